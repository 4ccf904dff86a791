"""What a person sees of an HTML report opened in chromium, read from the page after plotly drew
it: the summary table, the equity figure's curves, titles and axis ticks, the gate timeline's
bars and one bar's hover, and each trade chart's legend and stop line."""

from __future__ import annotations

from typing import Any

from tests.review.chromium_page import ChromiumPage

PLOTS_DRAWN = ("document.querySelectorAll('.js-plotly-plot').length > 0 && "
               "[...document.querySelectorAll('.js-plotly-plot')]"
               ".every(d => d._fullLayout && d.querySelector('.main-svg'))")

SEEN = r"""
(() => {
  const texts = (root, sel) => [...root.querySelectorAll(sel)].map(e => e.textContent.trim());
  const lineOf = (root, name) => {
    const g = [...root.querySelectorAll('.scatterlayer .trace')]
      .find(g => g.__data__ && g.__data__[0].trace.name === name);
    const path = g && g.querySelector('path.js-line');
    return path ? path.getAttribute('d') : null;
  };
  const ys = (gd, name) => {
    const trace = gd._fullData.find(t => t.name === name);
    return trace ? Array.from(trace.y) : null;
  };
  const summary = document.getElementById('summary-equity');
  const gate = summary._fullData.findIndex(t => t.type === 'bar');
  const bars = gate >= 0 ? summary._fullData[gate] : null;
  let hover = '';
  if (bars) {  // what a person hovering the first bar reads
    Plotly.Fx.hover(summary, [{curveNumber: gate, pointNumber: 0}], bars.xaxis + bars.yaxis);
    hover = texts(summary, '.hoverlayer').join(' ');
    Plotly.Fx.unhover(summary);
  }
  const trades = [...document.querySelectorAll('.js-plotly-plot[id^="trade-"]')].map(gd => {
    const legend = texts(gd, '.legendtext');
    const stops = legend.filter(t => t.startsWith('stop'));
    return {id: gd.id, legend, stops, stopLine: stops.length ? lineOf(gd, stops[0]) : null,
            candleLayers: gd.querySelectorAll('.trace.boxes').length};
  });
  const tables = document.querySelectorAll('table.kv');
  return {
    summaryRows: [...tables[1].rows].map(r => [r.cells[0].textContent, r.cells[1].textContent]),
    bodyText: document.body.innerText,
    titles: texts(summary, '.annotation-text'),
    yTicks: texts(summary, '.ytick text'),
    legend: texts(summary, '.legendtext'),
    markedLine: lineOf(summary, 'equity marked to market'),
    marked: ys(summary, 'equity marked to market'),
    realised: ys(summary, 'realised equity'),
    gateBars: summary.querySelectorAll('.barlayer .point path').length,
    gateRows: bars ? texts(summary, `.${bars.yaxis}tick text`) : [],
    hover,
    trades,
  };
})()
"""


def what_is_seen(page: ChromiumPage) -> dict[str, Any]:
    return page.evaluate(SEEN)
