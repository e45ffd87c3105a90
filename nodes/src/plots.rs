//! PNG report figures for detection training and evaluation: precision-recall
//! curves, the confusion matrix, training curves and a grid of predictions,
//! laid out the way Ultralytics draws them so that the two can be compared.
//!
//! Charts are drawn with `plotters` into an in-memory RGB buffer. Text uses the
//! font bundled with the project, registered with plotters under the family
//! "sans-serif", so no figure depends on the fonts (or fontconfig) of the
//! machine that renders it, and the same inputs give the same pixels anywhere.

use std::fmt::Display;
use std::io::Cursor;
use std::sync::OnceLock;

use ab_glyph::PxScale;
use image::{imageops, ImageFormat, Rgb, RgbImage};
use imageproc::drawing::{draw_filled_rect_mut, draw_hollow_rect_mut, draw_text_mut, text_size};
use imageproc::rect::Rect;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{FontStyle, FontTransform};
use yolo_core::metrics::{curve_grid, Detection, DetectionMetrics};
use yolo_core::train_config::EpochRecord;

use crate::style::{class_colour, font, ink_for, FONT_BYTES};
use crate::NodesError;

/// The family every text style below asks for; it is also plotters' default
/// family, so the mesh labels it draws on its own find the font too.
const FAMILY: &str = "sans-serif";

/// Figure sizes, in pixels.
const PR_SIZE: (u32, u32) = (1000, 800);
const CONFUSION_SIZE: (u32, u32) = (1000, 1000);
const TRAINING_SIZE: (u32, u32) = (1500, 800);

/// Matrix cells below this (column-normalised) value stay blank, as in
/// Ultralytics, so that the eye goes to the cells that matter.
const CONFUSION_MIN_SHOWN: f64 = 0.005;

/// Grey of the letterbox around thumbnails (Ultralytics' padding value).
const LETTERBOX: Rgb<u8> = Rgb([114, 114, 114]);
/// Margin around each thumbnail, so that neighbouring images stay apart.
const CELL_GAP: u32 = 2;

fn plot_colour(class: usize) -> RGBColor {
    let Rgb([r, g, b]) = class_colour(class);
    RGBColor(r, g, b)
}

/// Encodes a figure as PNG bytes.
pub fn encode_png(img: &RgbImage) -> Result<Vec<u8>, NodesError> {
    let mut bytes = Vec::new();
    img.write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)
        .map_err(|e| NodesError::Image(format!("PNG encoding: {e}")))?;
    Ok(bytes)
}

fn plot_error(e: impl Display) -> NodesError {
    NodesError::Image(format!("plot: {e}"))
}

/// Registers the bundled font with plotters, once per process. plotters keeps
/// fonts in a global table, so later calls only read the first outcome.
fn ensure_font() -> Result<(), NodesError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font(FAMILY, FontStyle::Normal, FONT_BYTES).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(NodesError::Image("the bundled font does not parse".into()))
    }
}

fn text_style(size: f64) -> TextStyle<'static> {
    (FAMILY, size).into_font().color(&BLACK)
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

/// Runs `draw` on a white `width` x `height` canvas and returns the pixels.
fn render(
    (width, height): (u32, u32),
    draw: impl FnOnce(&Area<'_>) -> Result<(), NodesError>,
) -> Result<RgbImage, NodesError> {
    ensure_font()?;
    let mut buffer = vec![255u8; width as usize * height as usize * 3];
    {
        // The backend borrows the buffer until it is dropped at the end of
        // this block; `present` flushes what it still holds.
        let root = BitMapBackend::with_buffer(&mut buffer, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        draw(&root)?;
        root.present().map_err(plot_error)?;
    }
    RgbImage::from_raw(width, height, buffer)
        .ok_or_else(|| NodesError::Image("plot buffer has the wrong size".into()))
}

/// The name of `class` for labels, its index when `names` lacks it.
fn class_name(names: &[String], class: usize) -> String {
    names
        .get(class)
        .cloned()
        .unwrap_or_else(|| class.to_string())
}

// ---------------------------------------------------------------------------
// Precision-recall curves

/// Precision against recall at IoU 0.5, one curve per labelled class, and
/// their mean in a thick black line (the curve whose area is mAP50). 1000x800.
pub fn pr_curves(metrics: &DetectionMetrics) -> Result<RgbImage, NodesError> {
    let grid = curve_grid();
    render(PR_SIZE, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption("Precision-Recall Curve", text_style(30.0))
            .margin(20)
            .x_label_area_size(60)
            .y_label_area_size(70)
            .build_cartesian_2d(0f64..1f64, 0f64..1f64)
            .map_err(plot_error)?;
        chart
            .configure_mesh()
            .x_desc("Recall")
            .y_desc("Precision")
            .label_style(text_style(18.0))
            .axis_desc_style(text_style(22.0))
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(plot_error)?;

        // Legend entries get smaller as classes grow so the box stays inside.
        let legend_size = (320.0 / (metrics.curves.len() + 1) as f64).clamp(10.0, 18.0);
        for curve in &metrics.curves {
            let ap50 = metrics
                .per_class
                .iter()
                .find(|m| m.class == curve.class)
                .map(|m| (m.name.clone(), m.ap50))
                .unwrap_or_else(|| (curve.class.to_string(), 0.0));
            let colour = plot_colour(curve.class);
            let points = grid.iter().copied().zip(curve.pr.iter().copied());
            chart
                .draw_series(LineSeries::new(points, colour.stroke_width(2)))
                .map_err(plot_error)?
                .label(format!("{} AP50 {:.3}", ap50.0, ap50.1))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(3))
                });
        }

        if !metrics.curves.is_empty() {
            // Mean over classes point by point, as Ultralytics' `py.mean(1)`.
            let n = metrics.curves.len() as f64;
            let mean: Vec<(f64, f64)> = grid
                .iter()
                .enumerate()
                .map(|(i, &x)| {
                    let sum: f64 = metrics
                        .curves
                        .iter()
                        .map(|c| c.pr.get(i).copied().unwrap_or(0.0))
                        .sum();
                    (x, sum / n)
                })
                .collect();
            chart
                .draw_series(LineSeries::new(mean, BLACK.stroke_width(4)))
                .map_err(plot_error)?
                .label(format!("all classes mAP50 {:.3}", metrics.map50))
                .legend(|(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], BLACK.stroke_width(4))
                });
            // Curves of a good model hug the top and the right: the lower
            // left is the empty corner.
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::LowerLeft)
                .label_font(text_style(legend_size))
                .background_style(WHITE.mix(0.9))
                .border_style(BLACK)
                .margin(10)
                .draw()
                .map_err(plot_error)?;
        } else {
            root.draw_text(
                "no labelled classes",
                &text_style(28.0).pos(Pos::new(HPos::Center, VPos::Center)),
                (PR_SIZE.0 as i32 / 2, PR_SIZE.1 as i32 / 2),
            )
            .map_err(plot_error)?;
        }
        Ok(())
    })
}

// ---------------------------------------------------------------------------
// Confusion matrix

/// Where the matrix cells lie in the confusion figure: cell (row, col) spans
/// `x0 + col * cell .. x0 + (col + 1) * cell`, likewise for rows from `y0`.
#[derive(Clone, Copy, Debug, PartialEq)]
struct MatrixLayout {
    x0: i32,
    y0: i32,
    cell: i32,
    /// Font size of tick labels and of cell values.
    label_size: f64,
    value_size: f64,
}

/// Space kept for the title, the colour bar, and the axis titles.
const CM_TOP: i32 = 70;
const CM_RIGHT: i32 = 110;
const CM_AXIS_TITLE: i32 = 40;
/// The longest tick label, in pixels, before names are shortened.
const CM_MAX_LABEL: i32 = 200;

fn matrix_layout(n: usize) -> MatrixLayout {
    let n = n.max(1) as i32;
    // Labels shrink with the number of classes; the space for them is fixed
    // so that the layout depends on the class count only (tests rely on it).
    let label_size = (600.0 / n as f64).clamp(9.0, 18.0);
    let margin = CM_AXIS_TITLE + CM_MAX_LABEL / 2 + 10;
    let side = (CONFUSION_SIZE.0 as i32 - margin - CM_RIGHT)
        .min(CONFUSION_SIZE.1 as i32 - CM_TOP - margin);
    let cell = (side / n).max(1);
    MatrixLayout {
        x0: margin,
        y0: CM_TOP,
        cell,
        label_size,
        value_size: (cell as f64 * 0.3).clamp(8.0, 22.0),
    }
}

/// `matrix / (column sums + 1e-9)`, Ultralytics' normalisation: each true
/// class's column sums to 1 (columns without any instance stay 0).
fn normalise_columns(matrix: &[Vec<u64>]) -> Vec<Vec<f64>> {
    let n = matrix.len();
    let sums: Vec<f64> = (0..n)
        .map(|c| {
            matrix
                .iter()
                .map(|row| row.get(c).copied().unwrap_or(0) as f64)
                .sum()
        })
        .collect();
    matrix
        .iter()
        .map(|row| {
            (0..n)
                .map(|c| row.get(c).copied().unwrap_or(0) as f64 / (sums[c] + 1e-9))
                .collect()
        })
        .collect()
}

/// matplotlib's "Blues" colour map (its 9 anchor colours), as Ultralytics
/// uses, linearly interpolated.
fn blues(v: f64) -> RGBColor {
    const STOPS: [[u8; 3]; 9] = [
        [0xF7, 0xFB, 0xFF],
        [0xDE, 0xEB, 0xF7],
        [0xC6, 0xDB, 0xEF],
        [0x9E, 0xCA, 0xE1],
        [0x6B, 0xAE, 0xD6],
        [0x42, 0x92, 0xC6],
        [0x21, 0x71, 0xB5],
        [0x08, 0x51, 0x9C],
        [0x08, 0x30, 0x6B],
    ];
    let t = v.clamp(0.0, 1.0) * (STOPS.len() - 1) as f64;
    let i = (t.floor() as usize).min(STOPS.len() - 2);
    let f = t - i as f64;
    let mix =
        |k: usize| (STOPS[i][k] as f64 * (1.0 - f) + STOPS[i + 1][k] as f64 * f).round() as u8;
    RGBColor(mix(0), mix(1), mix(2))
}

/// Tick labels longer than the space kept for them lose their end.
fn fit_label(root: &Area<'_>, label: &str, style: &TextStyle<'_>) -> String {
    let fits = |s: &str| {
        root.estimate_text_size(s, style)
            .map(|(w, _)| w as i32 <= CM_MAX_LABEL / 2)
            .unwrap_or(true)
    };
    if fits(label) {
        return label.to_string();
    }
    let chars: Vec<char> = label.chars().collect();
    for keep in (1..chars.len()).rev() {
        let short: String = chars[..keep].iter().collect::<String>() + "...";
        if fits(&short) {
            return short;
        }
    }
    "...".into()
}

/// The column-normalised confusion matrix as a heatmap, predicted class on Y
/// and true class on X (background last), as Ultralytics draws it. Cells show
/// their value when above 0.005 and the matrix has fewer than 30 classes.
/// `names` labels the classes; `metrics.confusion` is (nc+1) x (nc+1), rows
/// predicted, columns true. About 1000x1000.
pub fn confusion_matrix(
    metrics: &DetectionMetrics,
    names: &[String],
) -> Result<RgbImage, NodesError> {
    let matrix = &metrics.confusion;
    let n = matrix.len();
    if matrix.iter().any(|row| row.len() != n) {
        return Err(NodesError::Data(format!(
            "confusion matrix is not square ({n} rows)"
        )));
    }
    let values = normalise_columns(matrix);
    let layout = matrix_layout(n);
    let nc = n.saturating_sub(1);
    let labels: Vec<String> = (0..n)
        .map(|i| {
            if i == nc {
                "background".to_string()
            } else {
                class_name(names, i)
            }
        })
        .collect();
    // Ultralytics annotates only while the numbers stay legible.
    let annotate = nc < 30;

    render(CONFUSION_SIZE, |root| {
        let title = text_style(28.0).pos(Pos::new(HPos::Center, VPos::Center));
        root.draw_text(
            "Confusion Matrix Normalized",
            &title,
            (CONFUSION_SIZE.0 as i32 / 2, CM_TOP / 2),
        )
        .map_err(plot_error)?;
        let MatrixLayout { x0, y0, cell, .. } = layout;
        let side = cell * n as i32;

        for (r, row) in values.iter().enumerate() {
            for (c, &v) in row.iter().enumerate() {
                if v <= CONFUSION_MIN_SHOWN {
                    continue; // blank, as Ultralytics' NaN cells
                }
                let (x, y) = (x0 + c as i32 * cell, y0 + r as i32 * cell);
                root.draw(&Rectangle::new(
                    [(x, y), (x + cell, y + cell)],
                    blues(v).filled(),
                ))
                .map_err(plot_error)?;
                if annotate {
                    // Light text on the dark half of the colour map.
                    let colour = if v > 0.5 { WHITE } else { BLACK };
                    let style = (FAMILY, layout.value_size)
                        .into_font()
                        .color(&colour)
                        .pos(Pos::new(HPos::Center, VPos::Center));
                    root.draw_text(&format!("{v:.2}"), &style, (x + cell / 2, y + cell / 2))
                        .map_err(plot_error)?;
                }
            }
        }
        root.draw(&Rectangle::new(
            [(x0, y0), (x0 + side, y0 + side)],
            BLACK.stroke_width(1),
        ))
        .map_err(plot_error)?;

        // Tick labels: true classes under the columns (rotated to read upward),
        // predicted classes left of the rows.
        let tick = text_style(layout.label_size);
        for (i, label) in labels.iter().enumerate() {
            let label = fit_label(root, label, &tick);
            let mid = i as i32 * cell + cell / 2;
            let below = tick
                .transform(FontTransform::Rotate270)
                .pos(Pos::new(HPos::Right, VPos::Center));
            root.draw_text(&label, &below, (x0 + mid, y0 + side + 6))
                .map_err(plot_error)?;
            let left = tick.pos(Pos::new(HPos::Right, VPos::Center));
            root.draw_text(&label, &left, (x0 - 6, y0 + mid))
                .map_err(plot_error)?;
        }

        let axis = text_style(22.0).pos(Pos::new(HPos::Center, VPos::Center));
        root.draw_text(
            "True",
            &axis,
            (x0 + side / 2, CONFUSION_SIZE.1 as i32 - CM_AXIS_TITLE / 2),
        )
        .map_err(plot_error)?;
        root.draw_text(
            "Predicted",
            &axis.transform(FontTransform::Rotate270),
            (CM_AXIS_TITLE / 2, y0 + side / 2),
        )
        .map_err(plot_error)?;

        // Colour bar, 0 at the bottom.
        let bar_x = x0 + side + 20;
        for k in 0..side {
            let v = 1.0 - k as f64 / side.max(1) as f64;
            root.draw(&Rectangle::new(
                [(bar_x, y0 + k), (bar_x + 20, y0 + k + 1)],
                blues(v).filled(),
            ))
            .map_err(plot_error)?;
        }
        root.draw(&Rectangle::new(
            [(bar_x, y0), (bar_x + 20, y0 + side)],
            BLACK.stroke_width(1),
        ))
        .map_err(plot_error)?;
        let bar_label = text_style(16.0).pos(Pos::new(HPos::Left, VPos::Center));
        for (v, text) in [(0.0, "0.0"), (0.5, "0.5"), (1.0, "1.0")] {
            let y = y0 + ((1.0 - v) * side as f64).round() as i32;
            root.draw_text(text, &bar_label, (bar_x + 26, y))
                .map_err(plot_error)?;
        }
        Ok(())
    })
}

// ---------------------------------------------------------------------------
// Training curves

/// `min..max` of the finite values, widened so that flat or single-point
/// series still get a visible range.
fn value_range(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if lo > hi {
        return 0.0..1.0;
    }
    let pad = if hi > lo {
        (hi - lo) * 0.08
    } else {
        lo.abs().max(1.0) * 0.05
    };
    (lo - pad)..(hi + pad)
}

/// A line of a training chart: its legend label, colour, and the value it
/// takes from each record.
type Series<'s> = (&'s str, RGBColor, fn(&EpochRecord) -> f64);

/// One small chart of the training grid: each series is (label, colour,
/// value of a record).
fn training_panel(
    area: &Area<'_>,
    title: &str,
    history: &[EpochRecord],
    series: &[Series<'_>],
) -> Result<(), NodesError> {
    // Records count epochs from 0; the axis counts from 1, as Ultralytics'
    // results.csv and the project's epoch table do.
    let epoch = |r: &EpochRecord| r.epoch as i64 + 1;
    let first = history.first().map_or(1, epoch);
    let last = history.last().map_or(1, epoch);
    // An integer epoch axis gets integer ticks; pad it so the end points
    // are not drawn on the frame.
    let x_range = (first.min(last) - 1)..(first.max(last) + 1);
    let y_range = value_range(
        series
            .iter()
            .flat_map(|(_, _, get)| history.iter().map(get)),
    );
    let mut chart = ChartBuilder::on(area)
        .caption(title, text_style(22.0))
        .margin(12)
        .x_label_area_size(35)
        .y_label_area_size(60)
        .build_cartesian_2d(x_range, y_range)
        .map_err(plot_error)?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .label_style(text_style(14.0))
        .axis_desc_style(text_style(15.0))
        .x_labels(8)
        .y_labels(6)
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(plot_error)?;
    // Dots mark epochs while there are few enough to tell apart.
    let dot = if history.len() <= 60 { 3 } else { 0 };
    for &(label, colour, get) in series {
        let points = history
            .iter()
            .map(|r| (epoch(r), get(r)))
            .filter(|(_, v)| v.is_finite());
        let drawn = chart
            .draw_series(LineSeries::new(points, colour.stroke_width(2)).point_size(dot))
            .map_err(plot_error)?;
        if series.len() > 1 {
            drawn.label(label).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(3))
            });
        }
    }
    if series.len() > 1 {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .label_font(text_style(14.0))
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .draw()
            .map_err(plot_error)?;
    }
    Ok(())
}

/// Losses and validation metrics per epoch, a 2x3 grid of small charts:
/// box, cls and DFL loss on top; mAP50, mAP50-95, precision and recall below.
/// An empty history gives a figure that says "no epochs". 1500x800.
pub fn training_curves(history: &[EpochRecord]) -> Result<RgbImage, NodesError> {
    let blue = RGBColor(0x1F, 0x77, 0xB4);
    let orange = RGBColor(0xFF, 0x7F, 0x0E);
    render(TRAINING_SIZE, |root| {
        if history.is_empty() {
            let style = text_style(40.0).pos(Pos::new(HPos::Center, VPos::Center));
            root.draw_text(
                "no epochs",
                &style,
                (TRAINING_SIZE.0 as i32 / 2, TRAINING_SIZE.1 as i32 / 2),
            )
            .map_err(plot_error)?;
            return Ok(());
        }
        type Panel<'s> = (&'s str, Vec<Series<'s>>);
        let panels: [Panel<'_>; 6] = [
            ("train/box_loss", vec![("box", blue, |r| r.box_loss)]),
            ("train/cls_loss", vec![("cls", blue, |r| r.cls_loss)]),
            ("train/dfl_loss", vec![("dfl", blue, |r| r.dfl_loss)]),
            ("metrics/mAP50", vec![("mAP50", blue, |r| r.map50)]),
            ("metrics/mAP50-95", vec![("mAP50-95", blue, |r| r.map50_95)]),
            (
                "metrics/precision, recall",
                vec![
                    ("precision", blue, |r| r.precision),
                    ("recall", orange, |r| r.recall),
                ],
            ),
        ];
        for (area, (title, series)) in root.split_evenly((2, 3)).iter().zip(&panels) {
            training_panel(area, title, history, series)?;
        }
        Ok(())
    })
}

// ---------------------------------------------------------------------------
// Prediction grid

/// How an image of `width` x `height` fits in a cell: the scale and the
/// offset of its top-left corner, leaving `CELL_GAP` all round.
fn fit_in_cell(width: u32, height: u32, cell: u32) -> (f32, u32, u32) {
    let inner = cell.saturating_sub(2 * CELL_GAP).max(1) as f32;
    let scale = (inner / width.max(1) as f32).min(inner / height.max(1) as f32);
    let w = ((width as f32 * scale).round() as u32).clamp(1, cell);
    let h = ((height as f32 * scale).round() as u32).clamp(1, cell);
    (scale, (cell - w) / 2, (cell - h) / 2)
}

/// One cell of the grid: the image letterboxed to `cell` x `cell`, with its
/// detections.
fn prediction_cell(
    image: &RgbImage,
    detections: &[Detection],
    names: &[String],
    cell: u32,
) -> RgbImage {
    let mut canvas = RgbImage::from_pixel(cell, cell, LETTERBOX);
    let (scale, ox, oy) = fit_in_cell(image.width(), image.height(), cell);
    let w = ((image.width() as f32 * scale).round() as u32).clamp(1, cell);
    let h = ((image.height() as f32 * scale).round() as u32).clamp(1, cell);
    let thumb = imageops::resize(image, w, h, imageops::FilterType::Triangle);
    imageops::replace(&mut canvas, &thumb, ox as i64, oy as i64);

    // Thicker lines and bigger labels on bigger cells, within legible bounds.
    let thickness = (cell / 128).clamp(1, 4) as i32;
    let scale_px = PxScale::from((cell as f32 / 22.0).clamp(10.0, 20.0));
    for det in detections {
        let colour = class_colour(det.class);
        let [x1, y1, x2, y2] = det.bbox.map(|v| v * scale);
        let x1 = (x1 + ox as f32).round() as i32;
        let y1 = (y1 + oy as f32).round() as i32;
        let x2 = (x2 + ox as f32).round() as i32;
        let y2 = (y2 + oy as f32).round() as i32;
        for t in 0..thickness {
            let (w, h) = (x2 - x1 - 2 * t, y2 - y1 - 2 * t);
            if w > 0 && h > 0 {
                draw_hollow_rect_mut(
                    &mut canvas,
                    Rect::at(x1 + t, y1 + t).of_size(w as u32, h as u32),
                    colour,
                );
            }
        }

        let label = format!("{} {:.2}", class_name(names, det.class), det.score);
        let (tw, th) = text_size(scale_px, font(), &label);
        let pad = 2;
        let (lw, lh) = (tw as i32 + 2 * pad, th as i32 + 2 * pad + 2);
        // Above the box when there is room, else just inside its top.
        let ly = if y1 - lh >= 0 { y1 - lh } else { y1 };
        // Shifted left rather than cut off at the right edge of the cell.
        let lx = x1.min(cell as i32 - lw).max(0);
        draw_filled_rect_mut(
            &mut canvas,
            Rect::at(lx, ly).of_size(lw as u32, lh as u32),
            colour,
        );
        // draw_text places the top of the line box; the ink starts about a
        // fifth of the scale lower (as in synth::text::draw_centered).
        let ty = ly + pad - (scale_px.y * 0.2).round() as i32 + 1;
        draw_text_mut(
            &mut canvas,
            ink_for(colour),
            lx + pad,
            ty,
            scale_px,
            font(),
            &label,
        );
    }
    canvas
}

/// Thumbnails of `samples` (aspect kept, each in a `cell` x `cell` square,
/// row by row, `cols` per row) with their predicted boxes in the colour of
/// their class and a "name 0.87" label. Boxes are in the pixel coordinates
/// of their image. No samples give one empty cell.
pub fn prediction_grid(
    samples: &[(&RgbImage, &[Detection])],
    names: &[String],
    cols: usize,
    cell: u32,
) -> RgbImage {
    let cell = cell.max(2 * CELL_GAP + 1);
    let cols = cols.max(1).min(samples.len().max(1));
    let rows = samples.len().div_ceil(cols).max(1);
    let mut grid = RgbImage::from_pixel(cols as u32 * cell, rows as u32 * cell, LETTERBOX);
    for (i, (image, detections)) in samples.iter().enumerate() {
        let tile = prediction_cell(image, detections, names, cell);
        let (x, y) = ((i % cols) as u32 * cell, (i / cols) as u32 * cell);
        imageops::replace(&mut grid, &tile, x as i64, y as i64);
    }
    grid
}

#[cfg(test)]
mod tests {
    use super::*;
    use yolo_core::metrics::{ClassCurve, ClassMetrics, CURVE_POINTS};

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("sign{i}")).collect()
    }

    fn not_uniform(img: &RgbImage) -> bool {
        let first = img.get_pixel(0, 0);
        img.pixels().any(|p| p != first)
    }

    fn count_colour(img: &RgbImage, colour: Rgb<u8>) -> usize {
        img.pixels().filter(|&&p| p == colour).count()
    }

    /// Metrics of `nc` classes where class `c` has a flat PR curve at `pr[c]`.
    fn metrics(pr: &[f64], confusion: Vec<Vec<u64>>) -> DetectionMetrics {
        let per_class = pr
            .iter()
            .enumerate()
            .map(|(c, &p)| ClassMetrics {
                class: c,
                name: format!("sign{c}"),
                images: 3,
                labels: 5,
                precision: p,
                recall: p,
                ap50: p,
                ap50_95: p * 0.8,
            })
            .collect();
        let curves = pr
            .iter()
            .enumerate()
            .map(|(c, &p)| ClassCurve {
                class: c,
                precision: vec![p; CURVE_POINTS],
                recall: vec![p; CURVE_POINTS],
                f1: vec![p; CURVE_POINTS],
                pr: vec![p; CURVE_POINTS],
            })
            .collect();
        let mean = pr.iter().sum::<f64>() / pr.len().max(1) as f64;
        DetectionMetrics {
            map50: mean,
            map50_95: mean * 0.8,
            precision: mean,
            recall: mean,
            f1: mean,
            best_conf: 0.5,
            per_class,
            curves,
            confusion,
            images: 3,
            labels: 5 * pr.len(),
        }
    }

    fn diagonal(n: usize, count: u64) -> Vec<Vec<u64>> {
        (0..n)
            .map(|r| (0..n).map(|c| if r == c { count } else { 0 }).collect())
            .collect()
    }

    fn record(epoch: usize) -> EpochRecord {
        let e = epoch as f64 + 1.0;
        EpochRecord {
            epoch,
            box_loss: 2.0 / e,
            cls_loss: 3.0 / e,
            dfl_loss: 1.5 / e,
            images_per_s: 100.0,
            data_wait_s: 0.0,
            sync_s: 0.0,
            lr: 0.01,
            map50: 1.0 - 1.0 / (e + 1.0),
            map50_95: 0.7 - 0.7 / (e + 1.0),
            precision: 0.9 - 0.5 / e,
            recall: 0.8 - 0.5 / e,
        }
    }

    #[test]
    fn pr_figure_has_its_size_and_the_class_colours() {
        let img = pr_curves(&metrics(&[1.0, 0.6], diagonal(3, 5))).unwrap();
        assert_eq!(img.dimensions(), PR_SIZE);
        assert!(not_uniform(&img));
        // Class 0's curve (and its legend line) in its own colour.
        assert!(count_colour(&img, class_colour(0)) > 50);
        assert!(count_colour(&img, class_colour(1)) > 50);
    }

    #[test]
    fn pr_figure_without_classes_still_renders() {
        let img = pr_curves(&metrics(&[], vec![vec![0]])).unwrap();
        assert_eq!(img.dimensions(), PR_SIZE);
        assert!(not_uniform(&img));
    }

    #[test]
    fn confusion_matrix_is_dark_on_the_diagonal_and_light_off_it() {
        let n = 4; // 3 classes + background
        let img = confusion_matrix(&metrics(&[1.0; 3], diagonal(n, 7)), &names(3)).unwrap();
        assert_eq!(img.dimensions(), CONFUSION_SIZE);
        assert!(not_uniform(&img));
        let layout = matrix_layout(n);
        // A point inside cell (row, col), away from its centred value text.
        let sample = |row: i32, col: i32| {
            let x = layout.x0 + col * layout.cell + layout.cell / 8;
            let y = layout.y0 + row * layout.cell + layout.cell / 8;
            *img.get_pixel(x as u32, y as u32)
        };
        let dark = blues(1.0);
        assert_eq!(sample(1, 1), Rgb([dark.0, dark.1, dark.2]));
        assert_eq!(sample(0, 0), Rgb([dark.0, dark.1, dark.2]));
        // Off the diagonal the cell is blank.
        assert_eq!(sample(0, 1), Rgb([255, 255, 255]));
        assert_eq!(sample(2, 0), Rgb([255, 255, 255]));
    }

    #[test]
    fn confusion_columns_are_normalised() {
        // rows = predicted, cols = true: true class 0 was found 3 times and
        // missed (background row) once.
        let m = vec![vec![3, 0], vec![1, 0]];
        let v = normalise_columns(&m);
        assert!((v[0][0] - 0.75).abs() < 1e-6);
        assert!((v[1][0] - 0.25).abs() < 1e-6);
        assert_eq!(v[0][1], 0.0);
    }

    #[test]
    fn confusion_matrix_rejects_a_ragged_matrix() {
        let mut m = metrics(&[1.0], diagonal(2, 1));
        m.confusion[1].pop();
        assert!(confusion_matrix(&m, &names(1)).is_err());
    }

    #[test]
    fn training_curves_draw_every_epoch() {
        let history: Vec<EpochRecord> = (0..12).map(record).collect();
        let img = training_curves(&history).unwrap();
        assert_eq!(img.dimensions(), TRAINING_SIZE);
        assert!(not_uniform(&img));
        let one = training_curves(&history[..1]).unwrap();
        assert!(not_uniform(&one));
    }

    #[test]
    fn training_curves_without_epochs_say_so() {
        let img = training_curves(&[]).unwrap();
        assert_eq!(img.dimensions(), TRAINING_SIZE);
        assert!(not_uniform(&img));
    }

    #[test]
    fn prediction_grid_lays_out_cells_and_draws_boxes() {
        let cell = 128;
        let image = RgbImage::from_pixel(100, 60, Rgb([250, 250, 250]));
        let dets = [Detection {
            bbox: [10.0, 10.0, 50.0, 40.0],
            score: 0.87,
            class: 1,
        }];
        let samples: Vec<(&RgbImage, &[Detection])> =
            vec![(&image, &dets[..]), (&image, &[]), (&image, &dets[..])];
        let grid = prediction_grid(&samples, &names(2), 2, cell);
        assert_eq!(grid.dimensions(), (2 * cell, 2 * cell));

        // 100x60 in 124x124: scale 1.24, 124x74 at (2, 27).
        let (scale, ox, oy) = fit_in_cell(100, 60, cell);
        assert_eq!((ox, oy), (2, 27));
        let left = (10.0 * scale).round() as u32 + ox;
        let mid_y = (25.0 * scale).round() as u32 + oy;
        assert_eq!(*grid.get_pixel(left, mid_y), class_colour(1));
        // The third sample lies in the second row.
        assert_eq!(*grid.get_pixel(left, cell + mid_y), class_colour(1));
        // The second has no boxes: the same place shows the image.
        assert_eq!(*grid.get_pixel(cell + left, mid_y), Rgb([250, 250, 250]));
        // The fourth cell is empty letterbox.
        assert_eq!(*grid.get_pixel(cell + cell / 2, cell + cell / 2), LETTERBOX);
    }

    #[test]
    fn png_round_trips() {
        let img = prediction_grid(&[], &[], 3, 64);
        let bytes = encode_png(&img).unwrap();
        let back = image::load_from_memory(&bytes).unwrap();
        assert_eq!((back.width(), back.height()), img.dimensions());
        let fig = training_curves(&[record(0), record(1)]).unwrap();
        let back = image::load_from_memory(&encode_png(&fig).unwrap()).unwrap();
        assert_eq!((back.width(), back.height()), TRAINING_SIZE);
    }
}
