/**
 * The trend chart's geometry: the value after each recent change as an SVG path. Pure, so the
 * view only sets attributes and the arithmetic is tested without a browser.
 */

/**
 * @param {{version: number, previous_value: number, value: number}[]} changes ascending
 * @param {{width: number, height: number, pad: number}} box the viewBox and its inner margin
 * @returns {null | {line: string, area: string, end: {x: number, y: number}, low: number,
 *   high: number}} null when there is nothing to draw
 */
export function chartGeometry(changes, { width, height, pad }) {
  if (changes.length === 0) return null;
  // The first change also shows where it started from, so one change is already a line.
  const points = [
    { version: changes[0].version - 1, value: changes[0].previous_value },
    ...changes.map(({ version, value }) => ({ version, value })),
  ];
  const values = points.map((p) => p.value);
  const low = Math.min(...values);
  const high = Math.max(...values);
  const first = points[0].version;
  const span = points[points.length - 1].version - first;
  const x = (v) => round(pad + ((v - first) / span) * (width - 2 * pad));
  // A flat history is drawn through the middle rather than along an edge.
  const y = (v) =>
    round(high === low ? height / 2 : height - pad - ((v - low) / (high - low)) * (height - 2 * pad));
  const xy = points.map((p) => [x(p.version), y(p.value)]);
  const line = xy.map(([px, py], i) => `${i ? 'L' : 'M'}${px} ${py}`).join('');
  const [endX, endY] = xy[xy.length - 1];
  const area = `${line}L${endX} ${height}L${xy[0][0]} ${height}Z`;
  return { line, area, end: { x: endX, y: endY }, low, high };
}

const round = (n) => Math.round(n * 10) / 10;
