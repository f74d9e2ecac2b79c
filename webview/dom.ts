/** Small DOM helpers shared by the webviews. */
export const el = <K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, text?: string): HTMLElementTagNameMap[K] => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
};

/** A theme colour from VS Code's CSS variables, with a fallback. */
export function cssVar(name: string, dflt: string): string {
  return getComputedStyle(document.body).getPropertyValue(name).trim() || dflt;
}
