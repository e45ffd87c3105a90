//! Detection nodes without the CLI: the model and figure datasets round-trip
//! through the catalog, and the nodes refuse inconsistent inputs clearly.

use std::path::Path;

use nodes::annotations::{SignDataset, Split};
use nodes::detection::dataset::Picture;
use nodes::detection::evaluation::EvalParams;
use nodes::detection::{labeled_split, ModelFile};
use nodes::synth::{generate_synthetic_data, SynthParams};
use runner::config::{LoadOptions, ProjectConfig};
use runner::{Catalog, Data, DatasetTypes, Params};
use torch_nodes::evaluation::evaluate_yolo;
use yolo::{Detector, ModelInfo, Scale};

fn catalog(dir: &Path) -> Catalog {
    std::fs::write(
        dir.join("pipelines.yml"),
        "pipelines:\n  p:\n    nodes: [{func: noop}]\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("catalog.yml"),
        "model: {type: torch.ModelDataset, filepath: m/model.safetensors}\nfigure: {type: image.PNGDataset, filepath: r/f.png}\n",
    )
    .unwrap();
    let config = ProjectConfig::load(dir, &LoadOptions::default()).unwrap();
    let mut types = DatasetTypes::builtin();
    nodes::register_datasets(&mut types);
    Catalog::from_config(&config, &types).unwrap()
}

fn model_file(names: &[&str]) -> ModelFile {
    let info = ModelInfo {
        names: names.iter().map(|s| s.to_string()).collect(),
        arch: yolo::Architecture::V8,
        scale: Scale::N,
        imgsz: 64,
        name: None,
        version: None,
    };
    ModelFile::from_bytes(Detector::new(info, tch::Device::Cpu).to_bytes().unwrap()).unwrap()
}

fn scenes(n: usize) -> SignDataset {
    let p: SynthParams = serde_yaml::from_str(&format!(
        "{{seed: 3, scenes: {n}, width: 128, height: 128}}"
    ))
    .unwrap();
    let mut data = generate_synthetic_data(Params(p)).unwrap();
    for (i, r) in data.records.iter_mut().enumerate() {
        r.split = Some(if i % 2 == 0 { Split::Train } else { Split::Val });
    }
    data
}

#[test]
fn models_and_figures_round_trip_through_the_catalog() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = catalog(dir.path());
    let model = model_file(&["stop", "yield"]);
    catalog.save("model", &Data::new(model.clone())).unwrap();
    let loaded = catalog.load("model").unwrap();
    let loaded = loaded.downcast_ref::<ModelFile>().unwrap();
    assert_eq!(loaded.info, model.info);
    assert_eq!(loaded.bytes, model.bytes);
    assert!(torch_nodes::detector(loaded, tch::Device::Cpu).is_ok());

    let picture = Picture(image::RgbImage::from_pixel(7, 5, image::Rgb([1, 2, 3])));
    catalog.save("figure", &Data::new(picture)).unwrap();
    let back = catalog.load("figure").unwrap();
    let back = back.downcast_ref::<Picture>().unwrap();
    assert_eq!(back.0.dimensions(), (7, 5));
    assert_eq!(back.0.get_pixel(3, 3).0, [1, 2, 3]);

    // A file that is not a model is named in the error.
    std::fs::write(dir.path().join("m/model.safetensors"), b"garbage").unwrap();
    let err = catalog.load("model").unwrap_err().to_string();
    assert!(
        err.contains("model.safetensors") && err.contains("not a safetensors file"),
        "{err}"
    );
    assert!(catalog
        .save("model", &Data::new(3u32))
        .unwrap_err()
        .to_string()
        .contains("saves a ModelFile"));
}

#[test]
fn splits_become_labelled_images_and_unknown_classes_are_refused() {
    let mut data = scenes(6);
    let train = labeled_split(&data, Split::Train, None).unwrap();
    assert_eq!(train.len(), 3);
    let objects: usize = data
        .records
        .iter()
        .step_by(2)
        .map(|r| r.objects.len())
        .sum();
    assert_eq!(train.iter().map(|l| l.boxes.len()).sum::<usize>(), objects);
    assert!(train.iter().all(|l| l.image.dimensions() == (128, 128)));
    if let Some(o) = data.records.iter_mut().flat_map(|r| &mut r.objects).next() {
        o.class = "unicorn".into();
    }
    let err = labeled_split(&data, Split::Train, Some(64))
        .and_then(|_| labeled_split(&data, Split::Val, None))
        .unwrap_err();
    assert!(
        err.to_string().contains("class unicorn is not one of"),
        "{err}"
    );
}

#[test]
fn evaluation_checks_its_inputs() {
    let data = scenes(4);
    let history = nodes::detection::training::history_table(&[]).unwrap();
    let wrong_classes = model_file(&["a", "b"]);
    let err = evaluate_yolo(
        wrong_classes,
        data.clone(),
        history.clone(),
        Params(EvalParams::default()),
    )
    .unwrap_err();
    assert!(err.to_string().contains("the model knows classes"), "{err}");
    let names: Vec<&str> = data.classes.iter().map(String::as_str).collect();
    let bad_split = EvalParams {
        split: "train".into(),
        ..EvalParams::default()
    };
    let err = evaluate_yolo(
        model_file(&names),
        data.clone(),
        history.clone(),
        Params(bad_split),
    )
    .unwrap_err();
    assert!(err.to_string().contains("must be val or test"), "{err}");
    // An untrained model still yields a complete report.
    let (summary, table, pr, confusion, curves, grid) = evaluate_yolo(
        model_file(&names),
        data,
        history,
        Params(EvalParams {
            device: "cpu".into(),
            ..EvalParams::default()
        }),
    )
    .unwrap();
    assert_eq!(summary["images"], 2);
    assert_eq!(table.get_column_names().len(), 7);
    for picture in [pr, confusion, curves, grid] {
        assert!(picture.0.width() > 100);
    }
}
