"""Prints the Durable Object migration tags at a git revision, one line,
space-separated: the deploy pipeline compares them to decide between a gradual rollout and a plain
`wrangler deploy` (the platform refuses gradual uploads that change an object class). The classes'
migrations live in wrangler.toml.

    python3 scripts/migration-tags.py REV
"""
import subprocess
import sys
import tomllib


def tags(config):
    found = [m.get("tag", "") for m in config.get("migrations", [])]
    for name, env in sorted(config.get("env", {}).items()):
        found += [f"{name}:{m.get('tag', '')}" for m in env.get("migrations", [])]
    return found


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: migration-tags.py REV")
    shown = subprocess.run(["git", "show", f"{sys.argv[1]}:wrangler.toml"], capture_output=True, text=True)
    if shown.returncode != 0:
        sys.exit(f"no wrangler.toml at {sys.argv[1]}")
    print(" ".join(tags(tomllib.loads(shown.stdout))))
