//! The self-contained HTML view: an inline SVG laid out by [`Layout`],
//! a little CSS, and a few lines of script for highlighting. Nothing is
//! fetched from anywhere, so the page works offline.

use std::fmt::Write;

use super::layout::{Item, Layout};
use super::{type_of, DatasetTypesByName};
use crate::pipeline::Pipeline;

/// Horizontal room per box, and vertical room per layer (the page reads top
/// to bottom, as a long pipeline scrolls best vertically).
const SLOT_WIDTH: usize = 216;
const LAYER_HEIGHT: usize = 84;
const BOX_WIDTH: usize = 196;
const MARGIN: usize = 24;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Shortens long labels; the full text stays in the tooltip.
fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let kept: String = s.chars().take(max - 1).collect();
        format!("{kept}…")
    }
}

fn item_id(item: &Item, pipeline: &Pipeline) -> String {
    match item {
        Item::Node(i) => format!("node:{}", pipeline.nodes()[*i].name),
        Item::Dataset(d) => format!("data:{d}"),
    }
}

pub fn page(title: &str, pipeline: &Pipeline, types: &DatasetTypesByName) -> String {
    let layout = Layout::new(pipeline);
    let widest = layout.layers.iter().map(Vec::len).max().unwrap_or(1);
    let width = widest * SLOT_WIDTH + 2 * MARGIN;
    let height = layout.layers.len() * LAYER_HEIGHT + 2 * MARGIN;
    let centre = |layer: usize, slot: usize| -> (usize, usize) {
        let count = layout.layers[layer].len();
        let offset = (widest - count) * SLOT_WIDTH / 2;
        (
            MARGIN + offset + slot * SLOT_WIDTH + SLOT_WIDTH / 2,
            MARGIN + layer * LAYER_HEIGHT + LAYER_HEIGHT / 2,
        )
    };
    let half_height = |item: &Item| match item {
        Item::Node(_) => 25,
        Item::Dataset(_) => 19,
    };

    let mut svg = String::new();
    let _ = write!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}">"##
    );
    svg.push_str(r##"<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#8a94a6"/></marker></defs>"##);
    for (from, to) in &layout.edges {
        let (fc, fr) = layout.position[from];
        let (tc, tr) = layout.position[to];
        let (x1, y1) = centre(fc, fr);
        let (x2, y2) = centre(tc, tr);
        let (y1, y2) = (y1 + half_height(from), y2 - half_height(to));
        let mid = (y1 + y2) / 2;
        let _ = write!(
            svg,
            r##"<path class="edge" data-from="{}" data-to="{}" d="M{x1},{y1} C{x1},{mid} {x2},{mid} {x2},{y2}" marker-end="url(#arrow)"/>"##,
            escape(&item_id(from, pipeline)),
            escape(&item_id(to, pipeline))
        );
    }
    for (item, &(col, row)) in &layout.position {
        let (cx, cy) = centre(col, row);
        let x = cx - BOX_WIDTH / 2;
        let id = escape(&item_id(item, pipeline));
        match item {
            Item::Node(i) => {
                let node = &pipeline.nodes()[*i];
                let tags: Vec<String> = node.tags.iter().map(|t| format!("#{t}")).collect();
                let tooltip = format!(
                    "{}\nfunction: {}\ntags: {}\ninputs: {}\noutputs: {}",
                    node.name,
                    node.func,
                    if tags.is_empty() {
                        "-".to_string()
                    } else {
                        tags.join(" ")
                    },
                    node.inputs.join(", "),
                    node.outputs.join(", ")
                );
                let _ = write!(
                    svg,
                    r##"<g class="item node" data-id="{id}"><title>{}</title><rect x="{x}" y="{}" width="{BOX_WIDTH}" height="50" rx="8"/><text x="{cx}" y="{}" class="name">{}</text><text x="{cx}" y="{}" class="sub">{}()</text><text x="{cx}" y="{}" class="tags">{}</text></g>"##,
                    escape(&tooltip),
                    cy - 25,
                    cy - 9,
                    escape(&clip(&node.name, 28)),
                    cy + 5,
                    escape(&clip(&node.func, 30)),
                    cy + 18,
                    escape(&clip(&tags.join(" "), 34)),
                );
            }
            Item::Dataset(name) => {
                let kind = type_of(types, name);
                let class = match kind {
                    "memory" => "memory",
                    "parameters" => "params",
                    _ => "persisted",
                };
                let _ = write!(
                    svg,
                    r##"<g class="item dataset {class}" data-id="{id}"><title>{}</title><rect x="{x}" y="{}" width="{BOX_WIDTH}" height="38" rx="19"/><text x="{cx}" y="{}" class="name">{}</text><text x="{cx}" y="{}" class="sub">{}</text></g>"##,
                    escape(&format!("{name}\ntype: {kind}")),
                    cy - 19,
                    cy - 3,
                    escape(&clip(name, 30)),
                    cy + 11,
                    escape(&clip(kind, 32)),
                );
            }
        }
    }
    svg.push_str("</svg>");

    format!(
        r##"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title} — roadsign pipeline</title>
<style>
body {{ font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #1d2433; background: #f7f8fa; }}
header {{ padding: 12px 20px; background: #fff; border-bottom: 1px solid #dde1e8; display: flex; gap: 24px; align-items: baseline; flex-wrap: wrap; }}
h1 {{ font-size: 18px; margin: 0; }}
.legend span {{ display: inline-block; margin-right: 14px; font-size: 13px; }}
.legend i {{ display: inline-block; width: 14px; height: 10px; border-radius: 5px; margin-right: 4px; vertical-align: middle; border: 1px solid #8a94a6; }}
main {{ overflow: auto; padding: 8px; }}
.edge {{ fill: none; stroke: #b8c0cc; stroke-width: 1.4; }}
.edge.hot {{ stroke: #d9480f; stroke-width: 2.4; }}
.item rect {{ stroke-width: 1.4; }}
.node rect {{ fill: #e8f0fe; stroke: #3b6fd8; }}
.dataset.persisted rect {{ fill: #e6f6ec; stroke: #2f9e5b; }}
.dataset.memory rect {{ fill: #fff; stroke: #8a94a6; stroke-dasharray: 4 3; }}
.dataset.params rect {{ fill: #fff7e0; stroke: #c99a06; }}
.item.hot rect {{ stroke: #d9480f; stroke-width: 2.6; }}
.item.dim, .edge.dim {{ opacity: 0.25; }}
text {{ text-anchor: middle; pointer-events: none; }}
.name {{ font-size: 12px; font-weight: 600; }}
.sub {{ font-size: 10.5px; fill: #4a5568; font-family: ui-monospace, monospace; }}
.tags {{ font-size: 10px; fill: #6b46c1; }}
.item {{ cursor: pointer; }}
</style></head>
<body><header><h1>{title}</h1><div>{nodes} nodes · {datasets} datasets · {layers} layers</div>
<div class="legend"><span><i style="background:#e8f0fe;border-color:#3b6fd8"></i>node</span><span><i style="background:#e6f6ec;border-color:#2f9e5b"></i>persisted dataset</span><span><i style="background:#fff;border-style:dashed"></i>in memory</span><span><i style="background:#fff7e0;border-color:#c99a06"></i>parameters</span><span>click an item to highlight its neighbours</span></div></header>
<main>{svg}</main>
<script>
(function () {{
  var items = document.querySelectorAll('.item'), edges = document.querySelectorAll('.edge'), active = null;
  function clear() {{ items.forEach(function (e) {{ e.classList.remove('hot', 'dim'); }}); edges.forEach(function (e) {{ e.classList.remove('hot', 'dim'); }}); }}
  items.forEach(function (item) {{
    item.addEventListener('click', function () {{
      var id = item.getAttribute('data-id');
      clear();
      if (active === id) {{ active = null; return; }}
      active = id;
      var near = {{}}; near[id] = true;
      edges.forEach(function (e) {{
        var f = e.getAttribute('data-from'), t = e.getAttribute('data-to');
        if (f === id || t === id) {{ e.classList.add('hot'); near[f] = near[t] = true; }} else {{ e.classList.add('dim'); }}
      }});
      items.forEach(function (e) {{ e.classList.add(near[e.getAttribute('data-id')] ? 'hot' : 'dim'); }});
    }});
  }});
}})();
</script>
</body></html>
"##,
        title = escape(title),
        nodes = pipeline.len(),
        datasets = pipeline.datasets().len(),
        layers = pipeline.layers().len(),
    )
}
