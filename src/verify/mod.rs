//! Reading shards without loading them: the streaming `.ckpt` walker and safetensors headers.
pub mod ckpt;
pub mod proto;
pub mod safetensors;
