//! Encoding MindSpore `.ckpt` files: one protobuf `Checkpoint{value: Value{tag, tensor}}` record
//! per parameter, in MindSpore's order (network parameters, `scale_sense`, optimizer state, then
//! the append entries), with the append entries' MindSpore types (Int64 scalars, `loss_scale`
//! Float32, `global_step` Int32 [1]). The structure matches the fixtures written by MindSpore.

/// A tensor value to encode.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    pub tag: String,
    pub dims: Vec<u64>,
    pub tensor_type: &'static str,
    pub content: Vec<u8>,
}

impl Tensor {
    pub fn f32s(tag: &str, dims: &[u64], values: impl IntoIterator<Item = f32>) -> Self {
        Tensor {
            tag: tag.into(),
            dims: dims.to_vec(),
            tensor_type: "Float32",
            content: values.into_iter().flat_map(f32::to_le_bytes).collect(),
        }
    }

    pub fn i64_scalar(tag: &str, v: i64) -> Self {
        Tensor {
            tag: tag.into(),
            dims: vec![],
            tensor_type: "Int64",
            content: v.to_le_bytes().to_vec(),
        }
    }

    pub fn f32_scalar(tag: &str, v: f32) -> Self {
        Tensor {
            tag: tag.into(),
            dims: vec![],
            tensor_type: "Float32",
            content: v.to_le_bytes().to_vec(),
        }
    }

    pub fn i32_vec1(tag: &str, v: i32) -> Self {
        Tensor {
            tag: tag.into(),
            dims: vec![1],
            tensor_type: "Int32",
            content: v.to_le_bytes().to_vec(),
        }
    }
}

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn len_field(number: u8, payload: &[u8], out: &mut Vec<u8>) {
    out.push((number << 3) | 2);
    varint(payload.len() as u64, out);
    out.extend_from_slice(payload);
}

/// One serialised record (`0a <len> Value`).
pub fn record(t: &Tensor) -> Vec<u8> {
    let mut tp = Vec::with_capacity(t.content.len() + 32);
    for d in &t.dims {
        tp.push(0x08);
        varint(*d, &mut tp);
    }
    len_field(2, t.tensor_type.as_bytes(), &mut tp);
    len_field(3, &t.content, &mut tp);
    let mut value = Vec::with_capacity(tp.len() + t.tag.len() + 8);
    len_field(1, t.tag.as_bytes(), &mut value);
    len_field(2, &tp, &mut value);
    let mut rec = Vec::with_capacity(value.len() + 6);
    len_field(1, &value, &mut rec);
    rec
}

/// A whole file: the records one after another.
pub fn encode(tensors: &[Tensor]) -> Vec<u8> {
    tensors.iter().flat_map(record).collect()
}

/// The append entries MindFormers' `CheckpointMonitor` stores, in the order of the run kind.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AppendEntries {
    pub epoch_num: i64,
    pub step_num: i64,
    pub loss_scale: f32,
    pub global_batch_size: Option<i64>,
    /// A resumed run passes `append_info` with `step_num` first (spec §9.3).
    pub resumed: bool,
}

impl AppendEntries {
    pub fn tensors(&self) -> Vec<Tensor> {
        let e = Tensor::i64_scalar("epoch_num", self.epoch_num);
        let s = Tensor::i64_scalar("step_num", self.step_num);
        let mut v = if self.resumed { vec![s, e] } else { vec![e, s] };
        v.push(Tensor::f32_scalar("loss_scale", self.loss_scale));
        if let Some(g) = self.global_batch_size {
            v.push(Tensor::i64_scalar("global_batch_size", g));
        }
        v
    }
}

/// The smallest valid checkpoint of epoch `e` saved with sink size 2 (step `2e`): one tensor
/// and the append entries a first run stores — what tests and benchmarks fill large trees with.
pub fn small_shard(e: u64) -> Vec<u8> {
    let mut t = vec![Tensor::f32s("w", &[4], (0..4).map(|i| i as f32))];
    t.extend(
        AppendEntries {
            epoch_num: e as i64,
            step_num: 2 * e as i64,
            loss_scale: 1.0,
            global_batch_size: Some(8),
            resumed: false,
        }
        .tensors(),
    );
    encode(&t)
}

/// A tiny LLaMA-shaped network (the fixtures' parameter names), with deterministic values that
/// depend on `seed` (one per rank) and `step`. `width` scales the hidden size for benchmarks.
pub fn network(seed: u64, step: i64, width: u64) -> Vec<Tensor> {
    let h = 8 * width.max(1);
    let (vocab, ffn) = (16, 2 * h);
    let shapes: Vec<(&str, Vec<u64>)> = vec![
        ("model.tok_embeddings.embedding_weight", vec![vocab, h]),
        ("model.layers.0.attention_norm.weight", vec![h]),
        ("model.layers.0.attention.wq.weight", vec![h, h]),
        ("model.layers.0.attention.wk.weight", vec![h, h]),
        ("model.layers.0.attention.wv.weight", vec![h, h]),
        ("model.layers.0.attention.wo.weight", vec![h, h]),
        ("model.layers.0.ffn_norm.weight", vec![h]),
        ("model.layers.0.feed_forward.w1.weight", vec![ffn, h]),
        ("model.layers.0.feed_forward.w2.weight", vec![h, ffn]),
        ("model.layers.0.feed_forward.w3.weight", vec![ffn, h]),
        ("model.norm_out.weight", vec![h]),
        ("lm_head.weight", vec![vocab, h]),
    ];
    let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (step as u64).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        ((rng >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.2
    };
    let mut out: Vec<Tensor> = Vec::new();
    let count = |d: &[u64]| d.iter().product::<u64>() as usize;
    for (name, dims) in &shapes {
        out.push(Tensor::f32s(name, dims, (0..count(dims)).map(|_| next())));
    }
    out.push(Tensor::f32_scalar("scale_sense", 4096.0));
    out.push(Tensor::i32_vec1("global_step", step as i32));
    out.push(Tensor::f32_scalar("learning_rate", 1e-3));
    for moment in ["adam_m", "adam_v"] {
        for (name, dims) in &shapes {
            out.push(Tensor::f32s(
                &format!("{moment}.{name}"),
                dims,
                (0..count(dims)).map(|_| next().abs() * 0.01),
            ));
        }
    }
    out
}

/// A complete checkpoint file's bytes.
pub fn checkpoint_bytes(seed: u64, width: u64, append: &AppendEntries) -> Vec<u8> {
    let mut t = network(seed, append.step_num, width);
    t.extend(append.tensors());
    encode(&t)
}
