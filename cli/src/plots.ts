// Renders the figure (specs.ts) headless: vega to SVG, resvg to PNG.

/** SVG text of the figure (vega's headless renderer). */
type Spec = Record<string, unknown>;

export async function renderSvg(spec: Spec): Promise<string> {
  const [vega, vl] = await Promise.all([import('vega'), import('vega-lite')]);
  // Warnings only: vega-lite's notes on a valid spec are not the user's business.
  const logger = vega.logger(vega.Error);
  const view = new vega.View(vega.parse(vl.compile(spec as never, { logger }).spec), { renderer: 'none', logger });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** PNG bytes of an SVG at twice its size (resvg; system fonts, DejaVu or Liberation preferred). */
export async function renderPng(svg: string): Promise<Uint8Array> {
  const { Resvg } = await import('@resvg/resvg-js');
  const resvg = new Resvg(svg, {
    fitTo: { mode: 'zoom', value: 2 },
    background: 'white',
    font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans', sansSerifFamily: 'DejaVu Sans' },
  });
  return resvg.render().asPng();
}
