//! Reading the PyTorch fixtures (`fixtures/torch_*.safetensors`, written by
//! `benches/reference/torch_charrnn.py`): one cell's tensors, by the name after its prefix, and
//! its initial weights as our model. A test binary gets it with `mod torch_fixture;`.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::Path;

use charrnn_engine::files::torch_layout::from_torch;
use charrnn_engine::{CellKind, Model, ModelConfig};
use charrnn_kernels::Float;
use safetensors::tensor::Dtype;
use safetensors::SafeTensors;

/// One cell's part of a fixture.
pub struct CellTensors {
    /// The fixture's `config` metadata.
    pub meta: serde_json::Value,
    /// The model's shape, from the metadata (`vocab`, `embed`, `hidden`, `layers`).
    pub config: ModelConfig,
    /// The float64 tensors: shape and data.
    pub floats: HashMap<String, (Vec<usize>, Vec<f64>)>,
    /// The int32 tensors.
    pub ints: HashMap<String, Vec<i32>>,
}

impl CellTensors {
    /// The tensors of `cell` (named `<cell>.<name>`) in the fixture at `path`.
    pub fn load(path: &Path, cell: CellKind) -> CellTensors {
        let bytes = std::fs::read(path).expect("fixture present (committed)");
        let (_, meta) = SafeTensors::read_metadata(&bytes).unwrap();
        let meta: serde_json::Value = serde_json::from_str(&meta.metadata().as_ref().unwrap()["config"]).unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let prefix = format!("{}.", cell.name());
        let (mut floats, mut ints) = (HashMap::new(), HashMap::new());
        for (name, view) in st.tensors() {
            let Some(short) = name.strip_prefix(&prefix) else {
                continue;
            };
            match view.dtype() {
                Dtype::F64 => {
                    let data = view.data().chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().unwrap())).collect();
                    floats.insert(short.to_owned(), (view.shape().to_vec(), data));
                }
                Dtype::I32 => {
                    let data = view.data().chunks_exact(4).map(|b| i32::from_le_bytes(b.try_into().unwrap())).collect();
                    ints.insert(short.to_owned(), data);
                }
                other => panic!("unexpected dtype {other:?} for {name}"),
            }
        }
        let n = |k: &str| meta[k].as_u64().unwrap() as usize;
        let config = ModelConfig {
            cell,
            vocab_size: n("vocab"),
            embed_size: n("embed"),
            hidden_size: n("hidden"),
            num_layers: n("layers"),
        };
        CellTensors { config, floats, ints, meta }
    }

    /// A size from the metadata.
    pub fn size(&self, key: &str) -> usize {
        self.meta[key].as_u64().unwrap_or_else(|| panic!("fixture metadata lacks {key}")) as usize
    }

    /// The float64 tensor `name`.
    pub fn tensor(&self, name: &str) -> &[f64] {
        &self.floats.get(name).unwrap_or_else(|| panic!("fixture lacks {name}")).1
    }

    /// The int32 tensor `name` as symbol ids.
    pub fn ids(&self, name: &str) -> Vec<u32> {
        self.ints.get(name).unwrap_or_else(|| panic!("fixture lacks {name}")).iter().map(|&i| i as u32).collect()
    }

    /// The initial weights (`init.*`), through the same PyTorch-name conversion the checkpoints
    /// use.
    pub fn model<F: Float>(&self) -> Model<F> {
        let mut model = Model::<F>::new(self.config, 0);
        model.params = from_torch(&self.config, &model.layout, |name, shape| {
            let (s, data) = self.floats.get(&format!("init.{name}")).ok_or(format!("missing {name}"))?;
            assert_eq!(s.as_slice(), shape, "{name}");
            Ok(data.iter().map(|&x| F::from_f64(x)).collect())
        })
        .unwrap();
        model
    }
}
