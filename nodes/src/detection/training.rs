//! Training's history as a table (`train_yolo`'s second output; the
//! function itself runs libtorch: see the `torch-nodes` crate).

use polars::prelude::*;
use yolo_core::train_config::EpochRecord;

use crate::NodesError;

/// The training history as a table, one row per epoch.
pub fn history_table(history: &[EpochRecord]) -> Result<DataFrame, NodesError> {
    let column = |name: &str, f: fn(&EpochRecord) -> f64| {
        Column::new(name.into(), history.iter().map(f).collect::<Vec<f64>>())
    };
    Ok(DataFrame::new(
        history.len(),
        vec![
            Column::new(
                "epoch".into(),
                history
                    .iter()
                    .map(|r| r.epoch as u32 + 1)
                    .collect::<Vec<u32>>(),
            ),
            column("box_loss", |r| r.box_loss),
            column("cls_loss", |r| r.cls_loss),
            column("dfl_loss", |r| r.dfl_loss),
            column("images_per_s", |r| r.images_per_s),
            column("data_wait_s", |r| r.data_wait_s),
            column("sync_s", |r| r.sync_s),
            column("lr", |r| r.lr),
            column("map50", |r| r.map50),
            column("map50_95", |r| r.map50_95),
            column("precision", |r| r.precision),
            column("recall", |r| r.recall),
        ],
    )?)
}

/// The history back from its table (for the training-curves plot).
pub fn history_from_table(table: &DataFrame) -> Result<Vec<EpochRecord>, NodesError> {
    let f = |name: &str| -> Result<Vec<f64>, NodesError> {
        Ok(table
            .column(name)?
            .cast(&DataType::Float64)?
            .f64()?
            .into_no_null_iter()
            .collect())
    };
    let epochs = f("epoch")?;
    let w = f("data_wait_s")?;
    // Histories written before data-parallel training have no sync_s.
    let sync = match table.column("sync_s") {
        Ok(_) => f("sync_s")?,
        Err(_) => vec![0.0; epochs.len()],
    };
    let (b, c, d, s, lr, m50, m, p, r) = (
        f("box_loss")?,
        f("cls_loss")?,
        f("dfl_loss")?,
        f("images_per_s")?,
        f("lr")?,
        f("map50")?,
        f("map50_95")?,
        f("precision")?,
        f("recall")?,
    );
    Ok((0..epochs.len())
        .map(|i| EpochRecord {
            epoch: (epochs[i] as usize).saturating_sub(1),
            box_loss: b[i],
            cls_loss: c[i],
            dfl_loss: d[i],
            images_per_s: s[i],
            data_wait_s: w[i],
            sync_s: sync[i],
            lr: lr[i],
            map50: m50[i],
            map50_95: m[i],
            precision: p[i],
            recall: r[i],
        })
        .collect())
}
