//! HyperLogLog commands: PFADD on the key's shard; PFCOUNT and PFMERGE,
//! over several keys, on the connection under one transaction. The sketch
//! itself (Redis's parameters and estimator) is `types::hll`.

use bytes::Bytes;

use super::{cmd, flag::*, CommandSpec, ConnCmd, Ctx, Exec};
use crate::error::{CmdError, CmdResult};
use crate::resp::Out;
use crate::server::conn::Conn;
use crate::store::{Db, Value};
use crate::types::hll::Hll;
use crate::util::now_ms;

const G: &str = "hyperloglog";

pub static COMMANDS: &[CommandSpec] = &[
    cmd(
        "pfadd",
        -2,
        WRITE | DENYOOM | FAST,
        (1, 1, 1),
        &["write", "hyperloglog", "fast"],
        G,
        "Adds elements to a HyperLogLog key. Creates the key if it doesn't exist.",
        Exec::Shard(pfadd),
    ),
    cmd(
        "pfcount",
        -2,
        READONLY,
        (1, -1, 1),
        &["read", "hyperloglog", "slow"],
        G,
        "Returns the approximated cardinality of the set(s) observed by the HyperLogLog key(s).",
        Exec::Conn(ConnCmd::PfCount),
    ),
    cmd(
        "pfmerge",
        -2,
        WRITE | DENYOOM,
        (1, -1, 1),
        &["write", "hyperloglog", "slow"],
        G,
        "Merges one or more HyperLogLog values into a single key.",
        Exec::Conn(ConnCmd::PfMerge),
    ),
];

fn not_hll() -> CmdError {
    CmdError::Other("WRONGTYPE Key is not a valid HyperLogLog string value.".into())
}

/// The sketch at `key`: `None` when there is no key.
fn load(db: &mut Db, key: &[u8], now: u64) -> CmdResult<Option<Hll>> {
    match super::strings::with_string(db, key, now, Hll::from_bytes)? {
        None => Ok(None),
        Some(Some(h)) => Ok(Some(h)),
        Some(None) => Err(not_hll()),
    }
}

fn save(db: &mut Db, key: &[u8], h: &Hll, now: u64) {
    db.set(key, Value::string_from_vec(h.to_bytes()), true, now);
}

fn pfadd(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let now = ctx.now;
    let db = ctx.db();
    let (mut h, mut changed) = match load(db, &args[1], now)? {
        Some(h) => (h, false),
        None => (Hll::default(), true),
    };
    for e in &args[2..] {
        changed |= h.add(e);
    }
    if changed {
        save(db, &args[1], &h, now);
    }
    out.int(changed as i64);
    Ok(())
}

/// Loads the sketches of `keys` under one transaction and hands their union
/// to `f`, which may return a key to store it under.
async fn with_union<R: Send + 'static>(
    conn: &mut Conn,
    keys: &[Bytes],
    f: impl FnOnce(&Hll) -> (R, Option<Bytes>) + Send + 'static,
) -> CmdResult<R> {
    let db = conn.db;
    let mut shards: Vec<usize> = keys.iter().map(|k| conn.engine.shard_of(k)).collect();
    shards.sort_unstable();
    shards.dedup();
    let mut tx = conn.begin_tx();
    tx.lock_all(&shards).await;
    let mut union = Hll::default();
    let mut err = None;
    for k in keys {
        let k2 = k.clone();
        match tx.run(conn.engine.shard_of(k), move |sh| load(sh.db(db), &k2, now_ms())).await {
            Ok(Some(h)) => union.merge(&h),
            Ok(None) => {}
            Err(e) => {
                err = Some(e);
                break;
            }
        }
    }
    let r = match err {
        Some(e) => Err(e),
        None => {
            let (r, store) = f(&union);
            if let Some(dst) = store {
                let shard = conn.engine.shard_of(&dst);
                tx.run(shard, move |sh| save(sh.db(db), &dst, &union, now_ms())).await;
            }
            Ok(r)
        }
    };
    conn.end_tx(tx);
    r
}

/// PFCOUNT key [key ...].
pub async fn pfcount(conn: &mut Conn, args: &[Bytes]) -> CmdResult {
    let n = with_union(conn, &args[1..], |h| (h.count(), None)).await?;
    conn.out.int(n as i64);
    Ok(())
}

/// PFMERGE destkey [sourcekey ...]: the destination's own registers count.
pub async fn pfmerge(conn: &mut Conn, args: &[Bytes]) -> CmdResult {
    let dst = args[1].clone();
    with_union(conn, &args[1..], move |_| ((), Some(dst))).await?;
    conn.out.ok();
    Ok(())
}
