//! Loads a snapshot file into the shards.
//!
//! Runs on a thread of its own: it reads and decodes the file and sends
//! each shard batches of its keys as jobs, a few batches ahead at most, so
//! the memory in flight stays small whatever the file's size. Keys whose
//! TTL has passed are skipped, as Redis skips them on a primary.

use std::path::Path;
use std::sync::mpsc as std_mpsc;
use std::time::Instant;

use crate::shard::{Engine, TxId};
use crate::store::rdb::{self, Item};
use crate::store::{SmallBytes, Value};

/// Keys per batch sent to a shard.
const BATCH: usize = 256;
/// Batches on their way to the shards at most, per shard.
const IN_FLIGHT: usize = 4;

/// What a load found.
#[derive(Default, Debug)]
pub struct Loaded {
    pub keys: u64,
    pub expired: u64,
    /// Function library codes, to be loaded by the caller.
    pub functions: Vec<Vec<u8>>,
    pub seconds: f64,
}

type Batch = Vec<(usize, SmallBytes, Value, u64)>;

/// Loads `path` into the shards, as transaction `tx` (`NO_TX` at start-up,
/// the holder of every shard for DEBUG RELOAD). Blocks the calling thread.
pub fn load_file(path: &Path, engine: &Engine, tx: TxId) -> Result<Loaded, String> {
    let started = Instant::now();
    let file = std::fs::File::open(path).map_err(|e| format!("opening {}: {e}", path.display()))?;
    let input = std::io::BufReader::with_capacity(1 << 20, file);
    // Values take the encodings this server's limits give them.
    let mut reader = rdb::Reader::with_limits(input, engine.cfg.hash_limits(), engine.cfg.zset_limits()).map_err(|e| e.to_string())?;
    let now = crate::util::now_ms();
    let nshards = engine.nshards();
    let databases = engine.cfg.databases;
    let mut loaded = Loaded::default();
    let mut batches: Vec<Batch> = (0..nshards).map(|_| Vec::with_capacity(BATCH)).collect();
    let (ack_tx, ack_rx) = std_mpsc::channel::<Result<(), String>>();
    let mut in_flight = 0usize;
    let mut db = 0usize;
    let send = |shard: usize, batch: Batch, in_flight: &mut usize| -> Result<(), String> {
        while *in_flight >= IN_FLIGHT * nshards {
            ack_rx.recv().map_err(|_| "the node is shutting down".to_string())??;
            *in_flight -= 1;
        }
        let ack = ack_tx.clone();
        engine.send(
            shard,
            tx,
            Box::new(move |sh| {
                let _ = ack.send(insert_batch(sh, batch));
            }),
        );
        *in_flight += 1;
        Ok(())
    };
    while let Some(item) = reader.next().map_err(|e| e.to_string())? {
        match item {
            Item::SelectDb(n) => {
                if n as usize >= databases {
                    return Err(format!("the file holds keys of database {n}, and this server has {databases} databases (--databases)"));
                }
                db = n as usize;
            }
            Item::Entry { key, value, expire_at_ms, .. } => {
                let expire = expire_at_ms.unwrap_or(0);
                if expire != 0 && expire <= now {
                    loaded.expired += 1;
                    continue;
                }
                let shard = engine.shard_of(&key);
                batches[shard].push((db, SmallBytes::new(&key), value, expire));
                loaded.keys += 1;
                if batches[shard].len() >= BATCH {
                    let full = std::mem::replace(&mut batches[shard], Vec::with_capacity(BATCH));
                    send(shard, full, &mut in_flight)?;
                }
            }
            Item::Function(code) => loaded.functions.push(code),
            _ => {}
        }
    }
    for (shard, batch) in batches.into_iter().enumerate() {
        if !batch.is_empty() {
            send(shard, batch, &mut in_flight)?;
        }
    }
    for _ in 0..in_flight {
        ack_rx.recv().map_err(|_| "the node is shutting down".to_string())??;
    }
    loaded.seconds = started.elapsed().as_secs_f64();
    Ok(loaded)
}

/// Inserts a batch into a shard's databases; a key already there means
/// the file names it twice.
fn insert_batch(sh: &mut crate::shard::Shard, batch: Batch) -> Result<(), String> {
    for (db, key, value, expire) in batch {
        let d = sh.db(db);
        // With `now` 0 nothing expires while checking.
        if d.exists(&key, 0) {
            return Err(format!("the file holds key '{}' of database {db} twice", String::from_utf8_lossy(&key)));
        }
        d.insert_new(&key, value, expire);
    }
    Ok(())
}
