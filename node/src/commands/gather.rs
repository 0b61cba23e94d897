//! The multi-key read-compute-store shape shared by SINTERSTORE, BITOP,
//! PFMERGE and the like (`gather`: hold the keys' shards, read each key,
//! compute, write the result before the shards are released), and
//! `distinct_keys`, with which such a command reads a key it names many
//! times once.

use bytes::Bytes;

use super::Coord;
use crate::error::CmdResult;

/// A write `gather`'s caller asks for: run on the shard of `key`.
pub type Write = (Bytes, Box<dyn FnOnce(&mut crate::store::Db, &[u8], u64) + Send>);

/// The distinct keys of `keys` in first-seen order, and for each of
/// `keys` its index among them: a command naming one key many times
/// (SUNION k k k ..., BITOP AND d k k ...) reads and copies it once.
pub fn distinct_keys(keys: &[Bytes]) -> (Vec<Bytes>, Vec<usize>) {
    let mut seen: std::collections::HashMap<&[u8], usize> = std::collections::HashMap::with_capacity(keys.len());
    let mut distinct = Vec::new();
    let at = keys
        .iter()
        .map(|k| {
            *seen.entry(&k[..]).or_insert_with(|| {
                distinct.push(k.clone());
                distinct.len() - 1
            })
        })
        .collect();
    (distinct, at)
}

/// The multi-key read-compute-store shape (SINTERSTORE, BITOP, PFMERGE...):
/// holding the shards of `keys` (and of `dst`), reads each key's value out
/// with `load`, hands them to `finish`, and runs the write it may return
/// before the locks are released.
pub async fn gather<T: Send + 'static, R>(
    cx: &mut dyn Coord,
    keys: &[Bytes],
    dst: Option<&Bytes>,
    load: fn(&mut crate::store::Db, &[u8], u64) -> CmdResult<T>,
    finish: impl FnOnce(Vec<T>) -> (R, Option<Write>),
) -> CmdResult<R> {
    let db = cx.db();
    let mut shards: Vec<usize> = keys.iter().chain(dst).map(|k| cx.shard_of(k)).collect();
    shards.sort_unstable();
    shards.dedup();
    cx.lock(&shards).await;
    let mut values = Vec::with_capacity(keys.len());
    for k in keys {
        let k2 = k.clone();
        let shard = cx.shard_of(k);
        values.push(cx.run_on(shard, move |sh| load(sh.db(db), &k2, crate::util::now_ms())).await?);
    }
    let (r, write) = finish(values);
    if let Some((key, w)) = write {
        let shard = cx.shard_of(&key);
        cx.run_on(shard, move |sh| w(sh.db(db), &key, crate::util::now_ms())).await;
    }
    Ok(r)
}
