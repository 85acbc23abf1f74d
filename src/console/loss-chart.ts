// A dependency-free SVG line chart of validation (and train) loss per round.
export interface ChartPoint {
  x: number;
  y: number;
}

export function renderLossChart(
  svg: SVGSVGElement,
  series: { name: string; color: string; points: ChartPoint[] }[],
): void {
  const W = 800;
  const H = 240;
  const pad = { l: 48, r: 12, t: 12, b: 28 };
  const all = series.flatMap((s) => s.points).filter((p) => Number.isFinite(p.y));
  svg.replaceChildren();
  if (all.length === 0) return;
  const xs = all.map((p) => p.x);
  const ys = all.map((p) => p.y);
  const x0 = Math.min(...xs);
  const x1 = Math.max(...xs, x0 + 1);
  const y0 = Math.min(...ys);
  const y1 = Math.max(...ys, y0 + 1e-6);
  const sx = (x: number) => pad.l + ((x - x0) / (x1 - x0)) * (W - pad.l - pad.r);
  const sy = (y: number) => H - pad.b - ((y - y0) / (y1 - y0)) * (H - pad.t - pad.b);
  const ns = 'http://www.w3.org/2000/svg';
  const el = (tag: string, attrs: Record<string, string | number>, text?: string) => {
    const e = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
    if (text !== undefined) e.textContent = text;
    svg.appendChild(e);
    return e;
  };
  for (let i = 0; i <= 4; i++) {
    const y = y0 + ((y1 - y0) * i) / 4;
    el('line', { x1: pad.l, x2: W - pad.r, y1: sy(y), y2: sy(y), stroke: '#eceff3' });
    el('text', { x: 4, y: sy(y) + 4, 'font-size': 11, fill: '#6a7383' }, y.toFixed(3));
  }
  el('text', { x: W / 2, y: H - 6, 'font-size': 11, fill: '#6a7383', 'text-anchor': 'middle' }, 'round');
  series.forEach((s, i) => {
    const pts = s.points.filter((p) => Number.isFinite(p.y));
    if (pts.length)
      el('polyline', {
        points: pts.map((p) => `${sx(p.x)},${sy(p.y)}`).join(' '),
        fill: 'none',
        stroke: s.color,
        'stroke-width': 2,
      });
    el('text', { x: W - pad.r - 120, y: pad.t + 14 * (i + 1), 'font-size': 12, fill: s.color }, s.name);
  });
}
