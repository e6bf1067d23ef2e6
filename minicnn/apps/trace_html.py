"""``minicnn trace --html trace.html``: the step-through as one self-contained web page.

Everything is inside the one file: the CSS and JavaScript inline, every picture a PNG in a ``data:``
URI (written here with zlib, no imaging library needed), so the page opens from disk, offline, in
any current browser, and asks the network for nothing. What it shows, from the trace's record (the
same numbers as ``--json``) and the arrays of the pass:

- the network as a diagram: a block per layer with its output shape and parameters, the two towers
  side by side where ``groups=2`` splits a layer, the pooling windows that overlap marked;
- the forward and backward tables of the terminal trace;
- a chart of the activations' spread and one of the gradient norms, layer by layer;
- the spot checks with their tolerance and verdict;
- the input image and the paper's augmentation of it;
- one section per step, forward then backward: the layer's numbers, the first image's feature maps
  (conv1's filters too) and the worked example of its arithmetic. The left and right arrow keys (and
  the buttons) move from step to step; the URL's fragment names the step, so a link opens at it.
"""
from __future__ import annotations

import base64
import html
import json
import math
import struct
import zlib

import numpy as np

from .trace import _g, _shape

MAX_MAPS = 64  # feature maps shown per layer (the first ones)
MIN_TILE = 40  # small maps are enlarged to at least this many pixels a side


# ---- pictures ------------------------------------------------------------------------------------
def png(pixels):
    """A PNG file of an (H, W) grey or (H, W, 3) RGB uint8 array."""
    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    height, width = pixels.shape[:2]
    colour = 0 if pixels.ndim == 2 else 2

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    rows = b"".join(b"\x00" + row.tobytes() for row in pixels)  # filter type 0 on every row
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b""))


def data_uri(pixels):
    return "data:image/png;base64," + base64.b64encode(png(pixels)).decode("ascii")


def _to_bytes(a):
    """Scaled to 0..255 by its own range (a constant array: mid-grey)."""
    a = np.asarray(a, dtype=np.float64)
    low, high = np.nanmin(a), np.nanmax(a)
    if not np.isfinite(low) or not np.isfinite(high) or high <= low:
        return np.full(a.shape, 128, dtype=np.uint8)
    scaled = np.clip((a - low) / (high - low) * 255, 0, 255)
    return np.where(np.isnan(scaled), 255, scaled).astype(np.uint8)  # NaN: the padding of a vector's square


def tile(maps, gap=1):
    """Maps (n, h, w) (or (n, h, w, 3)) each scaled by its own range, enlarged to MIN_TILE, in a grid."""
    n, h, w = maps.shape[:3]
    scale = max(1, math.ceil(MIN_TILE / max(h, w)))
    maps = np.stack([_to_bytes(m) for m in maps]).repeat(scale, axis=1).repeat(scale, axis=2)
    h, w = h * scale, w * scale
    columns = math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    grid = np.full((rows * (h + gap) - gap, columns * (w + gap) - gap, *maps.shape[3:]), 255, dtype=np.uint8)
    for k in range(n):
        r, c = divmod(k, columns)
        grid[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = maps[k]
    return grid


def feature_maps(output):
    """The first image's maps of a layer's output as one grid picture, and what it shows."""
    first = np.asarray(output[0], dtype=np.float64)
    if first.ndim == 3:
        shown = min(len(first), MAX_MAPS)
        return tile(first[:shown]), f"the first {shown} of its {len(first)} maps" if shown < len(first) else \
            f"all {len(first)} maps"
    side = math.ceil(math.sqrt(first.size))  # a vector: laid out as a square, row by row
    square = np.full(side * side, np.nan)
    square[:first.size] = first
    return tile(square.reshape(1, side, side)), f"its {first.size} values, row by row in a {side}x{side} square"


def filters_picture(weight):
    """conv1's filters (K, 3, kh, kw) as RGB tiles."""
    w = np.asarray(weight, dtype=np.float64)
    if w.ndim != 4 or w.shape[1] != 3:
        return None
    return tile(w.transpose(0, 2, 3, 1))


def augmented_views(image, count=6, seed=0):
    """The paper's augmentation of one image (3, H, W) in [0, 1]: random crops of 227/256 of the side,
    mirrored with probability 1/2, the PCA colour shift (from this image's own pixels)."""
    from ..data import transforms as T

    size = max(8, round(image.shape[1] * 227 / 256))
    batch = np.repeat(image[None].astype(np.float32), count, axis=0)
    eigen = T.pca_colour(batch[:1])
    rng = np.random.default_rng(seed)
    views = T.augment(batch, size, rng, np.zeros(3), eigen)
    return [np.clip(v.transpose(1, 2, 0) * 255, 0, 255).astype(np.uint8) for v in views]


# ---- the page ------------------------------------------------------------------------------------
def _e(text):
    return html.escape(str(text), quote=True)


def _chart(title, labels, series, log=True):
    """A horizontal bar chart as inline SVG: per label one bar for each series (name, values, css
    class), values >= 0 on a log10 scale; a missing value (None) draws no bar."""
    width, left, bar = 640, 70, 12
    per_label = bar * len(series) + 6
    present = [v for _, values, _ in series for v in values if v is not None and v > 0]
    low = math.floor(math.log10(min(present))) if present else -1
    high = math.ceil(math.log10(max(present))) if present else 0
    span = max(high - low, 1)
    height = 34 + per_label * len(labels)
    parts = [f'<svg role="img" aria-label="{_e(title)}" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg"><title>{_e(title)}</title>',
             f'<text x="{left}" y="12" class="chart-label">log scale, 1e{low} to 1e{high}; '
             + "; ".join(f"{_e(name)}: {cls.replace('bar-', '')} bars" for name, _, cls in series) + "</text>"]
    for i, label in enumerate(labels):
        y0 = 24 + i * per_label
        parts.append(f'<text x="{left - 6}" y="{y0 + bar}" text-anchor="end" class="chart-label">{_e(label)}</text>')
        for k, (name, values, cls) in enumerate(series):
            v = values[i]
            if v is None or v <= 0:
                continue
            y = y0 + k * bar
            length = max(1.0, (math.log10(v) - low) / span * (width - left - 80))
            parts.append(f'<rect x="{left}" y="{y + 1}" width="{length:.1f}" height="{bar - 2}" class="{cls}">'
                         f'<title>{_e(name)}: {_e(_g(v))}</title></rect>'
                         f'<text x="{left + length + 4:.1f}" y="{y + bar - 2}" class="chart-value">{_e(_g(v))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _table(header, rows, row_ids=None):
    head = "".join(f"<th scope=\"col\">{_e(h)}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        ident = f' id="{row_ids[i]}-row"' if row_ids else ""
        body.append(f"<tr{ident}>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _diagram(record, plan):
    blocks = []
    for entry, p in zip(record["forward"], plan):
        layer = p["layer"]
        groups = getattr(layer, "groups", 1)
        overlap = ""
        if hasattr(layer, "kernel_size") and type(layer).__name__ == "MaxPool2d":
            (k, _), (s, _) = layer.kernel_size, layer.stride
            overlap = f'<span class="overlap">{k}x{k}/{s}: windows overlap by {k - s}</span>' if k > s else ""
        params = f"{entry['params']:,} params" if entry["params"] else ""
        link = f'<a href="#fwd-{_e(entry["layer"])}" class="block-link">{_e(entry["layer"])}</a>'
        if groups == 2:
            out = entry["out"]
            half = [out[0], out[1] // 2, *out[2:]]
            inner = "".join(f'<div class="tower"><span class="tower-name">tower {t}</span>{_shape(half)}</div>'
                            for t in (1, 2))
            blocks.append(f'<li class="block split">{link}<div class="towers">{inner}</div>'
                          f'<span class="meta">{_e(entry["op"])}; {params}</span></li>')
        else:
            blocks.append(f'<li class="block">{link}<span class="shape">{_shape(entry["out"])}</span>'
                          f'<span class="meta">{_e(entry["op"])}{"; " + params if params else ""}</span>{overlap}</li>')
    return f'<ol class="diagram" aria-label="the network, layer by layer">{"".join(blocks)}</ol>'


def _steps(record, pictures):
    """The step sections: forward layers, the loss, backward layers (from the loss back)."""
    sections = []
    forward = record["forward"]
    for entry in forward:
        name = entry["layer"]
        numbers = (f"{_shape(entry['in'])} &rarr; {_shape(entry['out'])}; output mean {_g(entry['mean'])}, "
                   f"std {_g(entry['std'])}, min {_g(entry['min'])}, max {_g(entry['max'])}")
        sections.append((f"fwd-{name}", f"Forward: {name} ({entry['op']})", numbers, entry.get("worked_example", []),
                         pictures.get(name, [])))
    loss = record["backward"][0]
    sections.append(("loss", "The loss", f"cross-entropy {record['loss']:.6f}; |d loss / d logits| "
                     f"{_g(loss['grad_out_norm'])}", loss.get("worked_example", []), []))
    for entry in record["backward"][1:]:
        name = entry["layer"]
        checks = entry.get("spot_checks", [])
        worst = max((c["rel_error"] for c in checks), default=None)
        numbers = (f"|grad out| {_g(entry['grad_out_norm'])}, |grad in| "
                   f"{_g(entry['grad_in_norm']) if entry['grad_in_norm'] is not None else '(the image)'}"
                   + "".join(f", |d loss / d {k}| {_g(v)}" for k, v in entry["param_grad_norms"].items())
                   + (f"; spot check: worst relative error {worst:.1e} over {len(checks)} coordinates" if checks else ""))
        sections.append((f"bwd-{name}", f"Backward: {name}", numbers, entry.get("worked_example", []), []))
    out = []
    for ident, title, numbers, example, pics in sections:
        figures = "".join(f'<figure><img src="{uri}" alt="{_e(alt)}"><figcaption>{_e(alt)}</figcaption></figure>'
                          for uri, alt in pics)
        worked = ("<h4>Worked example</h4><pre class=\"worked\">" + _e("\n".join(example)) + "</pre>") if example else \
            "<p class=\"worked-none\">(no arithmetic to work through here)</p>"
        out.append(f'<section class="step" id="{ident}" tabindex="-1" hidden aria-labelledby="{ident}-title">'
                   f'<h3 id="{ident}-title">{_e(title)}</h3><p class="numbers">{numbers}</p>{figures}{worked}'
                   f'</section>')
    return [s[0] for s in sections], "".join(out)


STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 1100px; padding: 0 16px 40px; color: #1a1a1a; }
h1 { font-size: 1.5em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; font-size: 12.5px; width: 100%; display: block; overflow-x: auto; }
th, td { border: 1px solid #ddd; padding: 2px 6px; text-align: right; white-space: nowrap; }
th { background: #f2f2f2; } td:first-child, th:first-child { text-align: left; }
tr.current { background: #fff3c4; }
.diagram { list-style: none; display: flex; flex-wrap: wrap; gap: 6px; padding: 0; }
.block { border: 1px solid #888; border-radius: 4px; padding: 4px 6px; min-width: 90px; font-size: 12px; background: #fafafa; }
.block.split { background: #eef4ff; } .towers { display: flex; gap: 4px; }
.tower { border: 1px dashed #6b8fd6; padding: 2px 4px; } .tower-name { display: block; color: #3457a0; }
.block-link { font-weight: bold; display: block; } .shape, .meta, .overlap { display: block; color: #444; }
.overlap { color: #a0522d; }
.nav { position: sticky; top: 0; background: #fff; padding: 8px 0; border-bottom: 1px solid #ccc; display: flex; gap: 8px; align-items: center; }
button { font: inherit; padding: 4px 10px; }
figure { display: inline-block; margin: 6px 12px 6px 0; vertical-align: top; max-width: 100%; }
figure img { max-width: 100%; image-rendering: pixelated; border: 1px solid #ccc; }
figcaption { font-size: 12px; color: #444; max-width: 420px; }
pre.worked { background: #f6f6f6; padding: 8px; overflow-x: auto; font-size: 12.5px; }
.bar-blue { fill: #4a78c2; } .bar-orange { fill: #e08a2c; } .chart-label, .chart-value { font-size: 11px; fill: #222; }
.ok { color: #11772d; font-weight: bold; } .failed { color: #b00020; font-weight: bold; }
.views img { height: 140px; }
@media (max-width: 700px) { body { font-size: 14px; } .block { min-width: 70px; } }
"""

SCRIPT = """
(function () {
  var steps = JSON.parse(document.getElementById('step-order').textContent);
  var current = -1;
  var label = document.getElementById('step-label');
  function show(index, focus, keepAddress) {
    if (index < 0 || index >= steps.length) { return; }
    if (current >= 0) {
      document.getElementById(steps[current]).hidden = true;
      var oldRow = document.getElementById(steps[current] + '-row');
      if (oldRow) { oldRow.classList.remove('current'); }
    }
    current = index;
    var section = document.getElementById(steps[current]);
    section.hidden = false;
    var row = document.getElementById(steps[current] + '-row');
    if (row) { row.classList.add('current'); }
    label.textContent = 'step ' + (current + 1) + ' of ' + steps.length + ': ' + section.querySelector('h3').textContent;
    if (!keepAddress && location.hash !== '#' + steps[current]) { history.replaceState(null, '', '#' + steps[current]); }
    if (focus) { section.focus({preventScroll: true}); }
  }
  function fromHash() {
    var index = steps.indexOf(location.hash.slice(1));
    show(index >= 0 ? index : 0, false, index < 0);  // no fragment: the page opens at its top
    if (index >= 0) { document.getElementById('steps').scrollIntoView(); }
  }
  document.getElementById('prev').addEventListener('click', function () { show(current - 1, true); });
  document.getElementById('next').addEventListener('click', function () { show(current + 1, true); });
  document.addEventListener('keydown', function (event) {
    if (event.altKey || event.ctrlKey || event.metaKey) { return; }
    if (event.key === 'ArrowRight') { show(current + 1, true); event.preventDefault(); }
    if (event.key === 'ArrowLeft') { show(current - 1, true); event.preventDefault(); }
  });
  window.addEventListener('hashchange', fromHash);
  fromHash();
})();
"""


def write_page(path, record, net, plan, outputs, pixels, compare=None):
    """Write the page for ``record`` (the trace's) to ``path``; returns its size in bytes. ``outputs``:
    each layer's output array in order; ``pixels``: the input batch (N, 3, H, W) in [0, 1];
    ``compare``: the record of the same pass with another activation, charted beside this one."""
    pictures = {}
    first_conv = None
    for entry, output in zip(record["forward"], outputs):
        picture, what = feature_maps(output)
        pictures[entry["layer"]] = [(data_uri(picture), f"{entry['layer']}'s output for the first image: {what}, "
                                     "each scaled from its own minimum (black) to its maximum (white)")]
        if first_conv is None and entry["layer"].startswith("conv"):
            first_conv = entry["layer"]
    if first_conv is not None:
        filters = filters_picture(getattr(net, first_conv).weight.data)
        if filters is not None:
            pictures[first_conv].insert(0, (data_uri(filters), f"{first_conv}'s {len(getattr(net, first_conv).weight.data)} "
                                            "filters as RGB pictures, each scaled by its own range"))
    order, step_html = _steps(record, pictures)
    forward_rows = [[e["layer"], e["op"], f"{_shape(e['in'])} -> {_shape(e['out'])}", e["size_arithmetic"] or "",
                     f"{e['params']:,}" if e["params"] else "-", f"{e['macs_per_image'] / 1e6:.1f}M" if e["macs_per_image"] else "-",
                     f"{e['ms']:.1f}", _g(e["mean"]), _g(e["std"]), _g(e["min"]), _g(e["max"])] for e in record["forward"]]
    backward = record["backward"][1:]
    backward_rows = [[b["layer"], _g(b["grad_out_norm"]),
                      _g(b["grad_in_norm"]) if b["grad_in_norm"] is not None else "(image)",
                      ", ".join(f"{k} {_g(v)}" for k, v in b["param_grad_norms"].items()) or "-", f"{b['ms']:.1f}",
                      (f"{max(c['rel_error'] for c in b['spot_checks']):.1e} ({len(b['spot_checks'])})"
                       if b.get("spot_checks") else "-")] for b in backward]
    checks = [dict(c, layer=b["layer"]) for b in backward for c in b.get("spot_checks", [])]
    tolerance = record["spot_check_tolerance"]
    check_rows = [[c["layer"], f"d loss / d {c['tensor']}{tuple(c['index'])}", f"{c['analytic']:.6g}",
                   f"{c['numeric']:.6g}", f"{c['rel_error']:.1e}", "ok" if c["rel_error"] <= tolerance else "FAILED"]
                  for c in checks]
    failures = record["spot_check_failures"]
    verdict = (f'<p class="failed">{len(failures)} of {len(checks)} spot checks FAILED (relative error over '
               f'{tolerance:g}): that backward is wrong.</p>' if failures else
               f'<p class="ok">All {len(checks)} spot checks agree within the tolerance {tolerance:g} (relative); '
               f'worst {record["worst_spot_check"]:.1e}.</p>' if checks else "<p>No spot checks were run (--checks 0).</p>")
    image = np.clip(pixels[0].transpose(1, 2, 0) * 255, 0, 255).astype(np.uint8)
    views = "".join(f'<figure><img src="{data_uri(v)}" alt="augmented view {i + 1}: a random crop, maybe mirrored, '
                    f'colour-shifted"><figcaption>view {i + 1}</figcaption></figure>'
                    for i, v in enumerate(augmented_views(pixels[0])))
    names = [e["layer"] for e in record["forward"]]
    back_names = [b["layer"] for b in backward]
    runs = [(f"{record['activation']} (this run)", record, "bar-blue")]
    if compare is not None:
        runs.append((f"{compare['activation']} (the same network and input)", compare, "bar-orange"))

    def spread(run):
        return [e["std"] for e in run["forward"]]

    def gradients(run):  # by position: the runs differ only in their activation layers' names
        return [b["grad_in_norm"] or b["grad_out_norm"] for b in run["backward"][1:]]

    charts = (_chart("spread of each layer's output (std), forward", names,
                     [(name, spread(run), cls) for name, run, cls in runs])
              + _chart("|d loss / d input| of each layer, backward (from the loss back)", back_names,
                       [(name, gradients(run), cls) for name, run, cls in runs]))
    if compare is not None:
        ratio = [a / b for a, b in zip(gradients(record), gradients(compare)) if a and b]
        charts = (f"<p>Two runs side by side: this one with {_e(record['activation'])} and the same network, weights and "
                  f"input with {_e(compare['activation'])} after every layer. The paper's point (ReLUs train several "
                  f"times faster than saturating units) shows in the gradients that reach the first layers: at conv1 "
                  f"the {_e(record['activation'])} run's gradient is {ratio[-1]:.3g} times the {_e(compare['activation'])} "
                  f"run's.</p>" if ratio else "") + charts
    title = (f"minicnn trace: {record['model']}, batch {record['batch']}, {record['mode']} mode, "
             f"{record['input_size']}x{record['input_size']} input")
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}</title><style>{STYLE}</style></head>
<body>
<header><h1>{_e(title)}</h1>
<p>{_e(record['source'])}; {record['classes']} classes; loss {record['loss']:.6f}. One forward and one backward pass
of minicnn's {_e(record['model'])}, layer by layer, on the {_e(record['backend'])} kernels: the same numbers as
<code>minicnn trace --json</code>.</p></header>
<nav class="nav" aria-label="step through the layers">
<button id="prev" type="button" aria-label="previous step (left arrow)">&larr; previous</button>
<button id="next" type="button" aria-label="next step (right arrow)">next &rarr;</button>
<span id="step-label" aria-live="polite"></span></nav>
<main>
<h2>The network</h2>{_diagram(record, plan)}
<h2>The input and its augmentation</h2>
<figure><img src="{data_uri(image)}" alt="the first input image of the batch, {record['input_size']}x{record['input_size']} pixels"><figcaption>the first input image</figcaption></figure>
<div class="views" role="group" aria-label="augmented views">{views}</div>
<h2 id="steps">Step by step</h2>
<p>Left and right arrow keys (or the buttons) move through the forward pass, the loss and the backward pass; the
address names the step, so a link opens at it.</p>
{step_html}
<h2>Forward</h2>{_table(["layer", "op", "shape", "size arithmetic", "params", "MACs/img", "ms", "mean", "std", "min", "max"],
                       forward_rows, [f"fwd-{n}" for n in names])}
<h2>Backward</h2>{_table(["layer", "|grad out|", "|grad in|", "|param grads|", "ms", "spot check"], backward_rows,
                        [f"bwd-{b['layer']}" for b in backward])}
<h2>Activations and gradients, layer by layer</h2>{charts}
<h2>Spot checks</h2>{verdict}{_table(["layer", "coordinate", "analytic", "finite differences", "relative error", "verdict"], check_rows)}
</main>
<script type="application/json" id="step-order">{json.dumps(order)}</script>
<script>{SCRIPT}</script>
</body></html>
"""
    data = page.encode("utf-8")
    with open(path, "wb") as f:
        f.write(data)
    return len(data)
