// Every relative link in the Markdown files (README.md, BENCHMARKS.md, docs/**/*.md) resolves:
// the file or folder exists inside the repository, and an `#anchor` into a Markdown file names
// one of its headings, slugged as GitHub does. External links (https:, mailto:) are not fetched.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve, sep } from 'node:path';

const ROOT = resolve(new URL('../..', import.meta.url).pathname);

/** The Markdown files to check: *.md at the root and everything under docs/. */
function markdownFiles(root) {
  const files = readdirSync(root)
    .filter((name) => name.endsWith('.md') && statSync(join(root, name)).isFile())
    .map((name) => join(root, name));
  const walk = (dir) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.md')) files.push(path);
    }
  };
  if (existsSync(join(root, 'docs'))) walk(join(root, 'docs'));
  return files.sort();
}

/** The text with fenced code blocks blanked out, line for line, so line numbers stay right. */
function withoutFences(text) {
  let fence = null;
  return text.split('\n').map((line) => {
    const open = line.match(/^ {0,3}(`{3,}|~{3,})/);
    if (fence) {
      if (open && open[1][0] === fence[0] && open[1].length >= fence.length && line.trim() === open[1]) fence = null;
      return '';
    }
    if (open) {
      fence = open[1];
      return '';
    }
    return line;
  });
}

/** Links on one line of prose (code spans removed first): inline, images, references, HTML. */
function lineLinks(line) {
  const prose = line.replace(/(`+)[\s\S]*?\1/g, (m) => ' '.repeat(m.length));
  const found = [];
  const inline = /!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*(<[^>]*>|[^\s)]+)(?:\s+(?:"[^"]*"|'[^']*'))?\s*\)/g;
  for (const m of prose.matchAll(inline)) found.push(m[1].replace(/^<|>$/g, ''));
  const reference = prose.match(/^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)/);
  if (reference) found.push(reference[1].replace(/^<|>$/g, ''));
  for (const m of prose.matchAll(/<(?:a|img)\b[^>]*?\b(?:href|src)="([^"]*)"/gi)) found.push(m[1]);
  return found;
}

/** GitHub's heading anchor: the rendered text, lower-cased, punctuation dropped, spaces to '-'. */
export function slug(heading) {
  const text = heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1') // links and images: their text
    .replace(/<[^>]+>/g, '') // HTML tags
    .replace(/`+/g, '') // code spans keep their content
    .replace(/(\*+|\b_+|_+\b)/g, ''); // emphasis markers
  return text
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc}\- ]/gu, '')
    .replace(/ /g, '-');
}

/** Every anchor a Markdown file defines: its headings' slugs (repeats get -1, -2, …) and HTML ids. */
export function anchors(text) {
  const lines = withoutFences(text);
  const seen = new Map();
  const out = new Set();
  const add = (heading) => {
    const base = slug(heading);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  };
  lines.forEach((line, i) => {
    const atx = line.match(/^ {0,3}#{1,6}[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$/);
    if (atx) add(atx[1]);
    else if (/^ {0,3}(=+|-+)[ \t]*$/.test(line) && i > 0 && /\S/.test(lines[i - 1]) && !/^\s*[|#>*+-]/.test(lines[i - 1])) {
      add(lines[i - 1].trim()); // a setext heading
    }
    for (const m of line.matchAll(/<[a-z]+\b[^>]*?\b(?:id|name)="([^"]+)"/gi)) out.add(m[1]);
  });
  return out;
}

/** The broken relative links of one Markdown file, as "file:line: link (why)". */
export function brokenLinks(file, root) {
  const problems = [];
  const where = relative(root, file);
  withoutFences(readFileSync(file, 'utf8')).forEach((line, i) => {
    for (const link of lineLinks(line)) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(link) || link.startsWith('//')) continue; // external
      const hash = link.indexOf('#');
      const pathPart = (hash < 0 ? link : link.slice(0, hash)).replace(/\?.*$/, '');
      const fragment = hash < 0 ? '' : link.slice(hash + 1);
      const say = (why) => problems.push(`${where}:${i + 1}: ${link} (${why})`);
      let target;
      try {
        target = pathPart === '' ? file : resolve(pathPart.startsWith('/') ? root : dirname(file), decodeURIComponent(pathPart).replace(/^\//, ''));
      } catch {
        say('malformed');
        continue;
      }
      if (target !== root && !target.startsWith(root + sep)) {
        say('outside the repository');
        continue;
      }
      if (!existsSync(target)) {
        say('no such file');
        continue;
      }
      if (fragment && target.endsWith('.md') && statSync(target).isFile()) {
        const id = decodeURIComponent(fragment);
        if (!anchors(readFileSync(target, 'utf8')).has(id)) say(`no heading #${id} in ${relative(root, target)}`);
      }
    }
  });
  return problems;
}

test('the checker itself: slugs, anchors, and broken links are found', () => {
  assert.equal(slug('Relays: the sockets and nearby reads'), 'relays-the-sockets-and-nearby-reads');
  assert.equal(slug("The Worker's entry"), 'the-workers-entry');
  assert.equal(slug('Batching (group commit)'), 'batching-group-commit');
  assert.equal(slug('What `make test` installs'), 'what-make-test-installs');
  assert.equal(slug('Ledger: a 1,000,000-entry trail'), 'ledger-a-1000000-entry-trail');
  assert.equal(slug('[Linked](x.md) **bold** heading'), 'linked-bold-heading');
  assert.deepEqual([...anchors('# A\n\n## A\n\n```\n# not a heading\n```\n\nB\n---\n<a id="here"></a>\n')], ['a', 'a-1', 'b', 'here']);

  const dir = mkdtempSync(join(tmpdir(), 'links-'));
  try {
    writeFileSync(join(dir, 'other.md'), '# Other\n\n## Some section\n');
    writeFileSync(
      join(dir, 'README.md'),
      [
        '# Top',
        '[ok](other.md) [ok](other.md#some-section) [ok](#top) [ok](./) [ext](https://example.com/x.md)',
        '[missing](nothing.md)',
        '[bad anchor](other.md#no-such-section)',
        '[bad local anchor](#nowhere)',
        '`[in code](nothing.md)`',
        '```',
        '[in a fence](nothing.md)',
        '```',
        '[ref]: gone/file.txt',
        '[escape](../../outside.md)',
      ].join('\n'),
    );
    const problems = brokenLinks(join(dir, 'README.md'), dir);
    assert.deepEqual(problems, [
      'README.md:3: nothing.md (no such file)',
      'README.md:4: other.md#no-such-section (no heading #no-such-section in other.md)',
      'README.md:5: #nowhere (no heading #nowhere in README.md)',
      'README.md:10: gone/file.txt (no such file)',
      'README.md:11: ../../outside.md (outside the repository)',
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

const files = markdownFiles(ROOT);

test('there are Markdown files to check', () => {
  for (const name of ['README.md', 'BENCHMARKS.md']) assert.ok(files.includes(join(ROOT, name)), name);
  assert.ok(files.some((f) => f.startsWith(join(ROOT, 'docs') + sep)), 'docs/*.md');
});

for (const file of files) {
  test(`every relative link in ${relative(ROOT, file)} resolves`, () => {
    assert.deepEqual(brokenLinks(file, ROOT), []);
  });
}
