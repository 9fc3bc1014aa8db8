//! An in-memory bucket behind `s3s`'s S3 protocol layer (HTTP, SigV4, the XML of every
//! answer) for the `s3_poll` benchmark. `s3s-fs`, which the tests use, walks its whole folder
//! for each listing page — quadratic in the object count, minutes for one listing of 131,072
//! objects — so it would measure itself, not the client; this store answers a page from a
//! sorted map, as a real store's index does. Only what ckptscope sends is answered:
//! `ListObjectsV2`, ranged `GetObject`, `HeadObject`.

use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result, S3};
use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

#[derive(Default)]
pub struct Mem {
    /// Shared with the benchmark, which fills and changes the bucket.
    pub objects: Arc<RwLock<BTreeMap<String, (bytes::Bytes, SystemTime)>>>,
    /// Added to every answer: a store's own time per request (a real one is tens of
    /// milliseconds away; this one is in the same process).
    pub latency: std::time::Duration,
}

impl Mem {
    async fn wait(&self) {
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
    }
}

#[async_trait::async_trait]
impl S3 for Mem {
    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        self.wait().await;
        let input = req.input;
        let prefix = input.prefix.clone().unwrap_or_default();
        let max = usize::try_from(input.max_keys.unwrap_or(1000).clamp(0, 1000)).unwrap_or(1000);
        let map = self.objects.read().map_err(|_| s3_error!(InternalError))?;
        let from = match input
            .continuation_token
            .clone()
            .or(input.start_after.clone())
        {
            Some(k) => Bound::Excluded(k),
            None => Bound::Included(prefix.clone()),
        };
        let mut contents = Vec::new();
        let mut truncated = false;
        for (k, (b, t)) in map.range((from, Bound::Unbounded)) {
            if !k.starts_with(&prefix) {
                break;
            }
            if contents.len() == max {
                truncated = true;
                break;
            }
            contents.push(Object {
                key: Some(k.clone()),
                size: Some(b.len() as i64),
                last_modified: Some(Timestamp::from(*t)),
                ..Default::default()
            });
        }
        let next = match truncated {
            true => contents.last().and_then(|o: &Object| o.key.clone()),
            false => None,
        };
        Ok(S3Response::new(ListObjectsV2Output {
            key_count: Some(contents.len() as i32),
            max_keys: Some(max as i32),
            is_truncated: Some(truncated),
            contents: Some(contents),
            continuation_token: input.continuation_token,
            next_continuation_token: next,
            name: Some(input.bucket),
            prefix: input.prefix,
            ..Default::default()
        }))
    }

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        self.wait().await;
        let input = req.input;
        let (bytes, t) = self
            .objects
            .read()
            .map_err(|_| s3_error!(InternalError))?
            .get(&input.key)
            .cloned()
            .ok_or_else(|| s3_error!(NoSuchKey))?;
        let len = bytes.len() as u64;
        let (body, range) = match input.range {
            None => (bytes, None),
            Some(r) => {
                let r = r.check(len)?;
                let s = bytes.slice(r.start as usize..r.end as usize);
                (s, Some(format!("bytes {}-{}/{len}", r.start, r.end - 1)))
            }
        };
        Ok(S3Response::new(GetObjectOutput {
            content_length: Some(body.len() as i64),
            content_range: range,
            last_modified: Some(Timestamp::from(t)),
            body: Some(StreamingBlob::from(s3s::Body::from(body))),
            ..Default::default()
        }))
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        self.wait().await;
        let (bytes, t) = self
            .objects
            .read()
            .map_err(|_| s3_error!(InternalError))?
            .get(&req.input.key)
            .cloned()
            .ok_or_else(|| s3_error!(NoSuchKey))?;
        Ok(S3Response::new(HeadObjectOutput {
            content_length: Some(bytes.len() as i64),
            last_modified: Some(Timestamp::from(t)),
            ..Default::default()
        }))
    }
}
