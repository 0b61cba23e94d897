//! The stream encoding: a radix tree of listpacks, each keyed by its master
//! entry ID (16 bytes, big-endian) and holding a master entry (live and
//! deleted counts, the master field names) then entries with IDs
//! delta-encoded against the master and field names omitted when they are
//! the master's; then the length, last ID, first ID, highest deleted ID and
//! entries added (types 19 and 21), and the consumer groups: name, last
//! delivered ID, entries read (types 19 and 21), the pending entries (raw
//! 16-byte ID, delivery time, delivery count), and the consumers (name,
//! seen time, active time in type 21, the raw IDs of their pending
//! entries). Files are written as type 19 (what redis-server 7.0 reads),
//! so consumers' active times do not survive a save.

use super::decode::{read_len, read_string};
use super::encode::{put_len, put_string_with};
use super::input::Input;
use super::listpack::{read_listpack, Elem, ListpackWriter};
use super::{types, RdbError};
use crate::store::Value;
use crate::types::stream::{Fields, FieldsBuilder, FieldsRef, StreamId, StreamValue, Trim};
use crate::types::stream_group::{Consumer, Group, Groups, Pending};

/// Redis's `stream-node-max-bytes` and `stream-node-max-entries` defaults.
const NODE_MAX_BYTES: usize = 4096;
const NODE_MAX_ENTRIES: usize = 100;

const FLAG_DELETED: i64 = 1;
const FLAG_SAMEFIELDS: i64 = 2;

struct Node<'a> {
    master: StreamId,
    fields: Vec<&'a [u8]>,
    lp: ListpackWriter,
    count: usize,
}

impl<'a> Node<'a> {
    fn new(master: StreamId, fields: FieldsRef<'a>) -> Node<'a> {
        let mut lp = ListpackWriter::new();
        lp.push_int(0); // live entries, set when the node is finished
        lp.push_int(0); // deleted entries
        lp.push_int(fields.len() as i64);
        for (f, _) in fields {
            lp.push(f);
        }
        lp.push_int(0); // master entry terminator
        Node { master, fields: fields.iter().map(|(f, _)| f).collect(), lp, count: 0 }
    }

    fn add(&mut self, id: StreamId, fields: FieldsRef) {
        let same = fields.len() == self.fields.len() && fields.iter().zip(&self.fields).all(|((f, _), m)| f == *m);
        self.lp.push_int(if same { FLAG_SAMEFIELDS } else { 0 });
        self.lp.push_int(id.ms.wrapping_sub(self.master.ms) as i64);
        self.lp.push_int(id.seq.wrapping_sub(self.master.seq) as i64);
        if same {
            for (_, v) in fields {
                self.lp.push(v);
            }
            self.lp.push_int(fields.len() as i64 + 3);
        } else {
            self.lp.push_int(fields.len() as i64);
            for (f, v) in fields {
                self.lp.push(f);
                self.lp.push(v);
            }
            self.lp.push_int(2 * fields.len() as i64 + 4);
        }
        self.count += 1;
    }

    fn finish(mut self, out: &mut Vec<(StreamId, Vec<u8>)>) {
        // At most NODE_MAX_ENTRIES (< 128): a one-byte integer.
        self.lp.set_first_uint7(self.count as u8);
        out.push((self.master, self.lp.finish()));
    }
}

fn id_key(id: StreamId) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&id.ms.to_be_bytes());
    k[8..].copy_from_slice(&id.seq.to_be_bytes());
    k
}

pub fn write_stream(out: &mut Vec<u8>, s: &StreamValue, compress: bool) {
    let mut nodes = Vec::new();
    let mut cur: Option<Node> = None;
    for (id, fields) in s.iter() {
        let size: usize = fields.iter().map(|(f, v)| f.len() + v.len()).sum();
        if let Some(n) = cur.take() {
            if n.lp.bytes() + size >= NODE_MAX_BYTES || n.count >= NODE_MAX_ENTRIES {
                n.finish(&mut nodes);
            } else {
                cur = Some(n);
            }
        }
        cur.get_or_insert_with(|| Node::new(id, fields)).add(id, fields);
    }
    if let Some(n) = cur {
        n.finish(&mut nodes);
    }
    put_len(out, nodes.len() as u64);
    for (master, lp) in &nodes {
        put_string_with(out, &id_key(*master), compress);
        put_string_with(out, lp, compress);
    }
    put_len(out, s.len() as u64);
    let first = s.first_id();
    for id in [s.last_id, first, s.max_deleted] {
        put_len(out, id.ms);
        put_len(out, id.seq);
    }
    put_len(out, s.added);
    write_groups(out, s.groups.as_deref(), compress);
}

/// The consumer groups, as Redis 7.0 writes them (type 19).
fn write_groups(out: &mut Vec<u8>, groups: Option<&Groups>, compress: bool) {
    let Some(groups) = groups else {
        put_len(out, 0);
        return;
    };
    put_len(out, groups.by_name.len() as u64);
    for (name, g) in &groups.by_name {
        put_string_with(out, name, compress);
        put_len(out, g.last_id.ms);
        put_len(out, g.last_id.seq);
        put_len(out, g.entries_read as u64);
        put_len(out, g.pel.len() as u64);
        for (id, p) in &g.pel {
            out.extend_from_slice(&id_key(*id));
            out.extend_from_slice(&p.delivered_ms.to_le_bytes());
            put_len(out, p.deliveries);
        }
        put_len(out, g.consumers.len() as u64);
        for (name, c) in &g.consumers {
            put_string_with(out, name, compress);
            out.extend_from_slice(&c.seen_ms.to_le_bytes());
            put_len(out, c.pending.len() as u64);
            for id in &c.pending {
                out.extend_from_slice(&id_key(*id));
            }
        }
    }
}

/// The entries of one node's listpack (live ones only), in order.
fn read_node(lp: &[u8], master: StreamId, out: &mut Vec<(StreamId, Fields)>) -> Result<(), &'static str> {
    let elems = read_listpack(lp)?;
    let mut it = elems.iter();
    let int = |it: &mut std::slice::Iter<Elem>| it.next().and_then(|e| e.int()).ok_or("stream listpack: integer expected");
    let live = int(&mut it)?;
    let deleted = int(&mut it)?;
    let nmaster = int(&mut it)?;
    if live < 0 || deleted < 0 || nmaster < 0 || nmaster as usize > elems.len() {
        return Err("stream listpack: bad master entry");
    }
    let master_fields: Vec<&Elem> = it.by_ref().take(nmaster as usize).collect();
    if master_fields.len() != nmaster as usize || int(&mut it)? != 0 {
        return Err("stream listpack: bad master entry");
    }
    let total = live.checked_add(deleted).ok_or("stream listpack: bad counts")?;
    let (mut seen_live, mut buf) = (0, itoa::Buffer::new());
    for _ in 0..total {
        let flags = int(&mut it)?;
        let id = StreamId { ms: master.ms.wrapping_add(int(&mut it)? as u64), seq: master.seq.wrapping_add(int(&mut it)? as u64) };
        let mut fields = FieldsBuilder::default();
        let n = if flags & FLAG_SAMEFIELDS != 0 {
            for f in &master_fields {
                let v = it.next().ok_or("stream listpack: entry runs past the end")?;
                fields.push(f.bytes(&mut buf), v.bytes(&mut itoa::Buffer::new()));
            }
            master_fields.len() as i64 + 3
        } else {
            let n = int(&mut it)?;
            if n < 0 || n as usize > elems.len() {
                return Err("stream listpack: bad field count");
            }
            for _ in 0..n {
                let (Some(f), Some(v)) = (it.next(), it.next()) else { return Err("stream listpack: entry runs past the end") };
                fields.push(f.bytes(&mut buf), v.bytes(&mut itoa::Buffer::new()));
            }
            2 * n + 4
        };
        if int(&mut it)? != n {
            return Err("stream listpack: wrong entry element count");
        }
        let fields = fields.finish();
        if fields.is_empty() {
            // XADD never makes one; the stream type does not hold them.
            return Err("stream entry without fields");
        }
        if flags & FLAG_DELETED == 0 {
            seen_live += 1;
            out.push((id, fields));
        }
    }
    if it.next().is_some() || seen_live != live {
        return Err("stream listpack: entry counts do not match the master entry");
    }
    Ok(())
}

fn read_id<I: Input + ?Sized>(inp: &mut I) -> Result<StreamId, RdbError> {
    Ok(StreamId { ms: read_len(inp)?, seq: read_len(inp)? })
}

pub fn read_stream<I: Input + ?Sized>(inp: &mut I, rdb_type: u8) -> Result<Value, RdbError> {
    let nodes = read_len(inp)?;
    inp.check_count(nodes, 2)?;
    let mut entries: Vec<(StreamId, Fields)> = Vec::new();
    for _ in 0..nodes {
        let at = inp.offset();
        let key = read_string(inp)?;
        let Ok(key) = <[u8; 16]>::try_from(&key[..]) else { return Err(RdbError::corrupt(at, "stream node key is not a stream ID")) };
        let master = StreamId {
            ms: u64::from_be_bytes(key[..8].try_into().unwrap_or_default()),
            seq: u64::from_be_bytes(key[8..].try_into().unwrap_or_default()),
        };
        let at = inp.offset();
        let lp = read_string(inp)?;
        read_node(&lp, master, &mut entries).map_err(|e| RdbError::corrupt(at, e))?;
    }
    let length = read_len(inp)?;
    let last_id = read_id(inp)?;
    let (max_deleted, added) = if rdb_type == types::STREAM_LISTPACKS {
        (StreamId::default(), length)
    } else {
        let _first = read_id(inp)?;
        (read_id(inp)?, read_len(inp)?)
    };
    let at = inp.offset();
    if length != entries.len() as u64 {
        return Err(RdbError::corrupt(at, format!("stream length {length} but {} entries", entries.len())));
    }
    if entries.windows(2).any(|w| w[0].0 >= w[1].0) || entries.last().is_some_and(|(id, _)| *id > last_id) {
        return Err(RdbError::corrupt(at, "stream entry IDs out of order or past the last ID"));
    }
    let mut s = StreamValue::default();
    for (id, fields) in &entries {
        s.append(*id, fields.iter(), Trim::NODE_ENTRIES);
    }
    s.last_id = last_id;
    s.added = added;
    s.max_deleted = max_deleted;
    s.groups = read_groups(inp, rdb_type, &s)?;
    Ok(Value::Stream(Box::new(s)))
}

fn raw_id<I: Input + ?Sized>(inp: &mut I) -> Result<StreamId, RdbError> {
    let k = inp.array::<16>()?;
    let (ms, seq) = k.split_at(8);
    Ok(StreamId { ms: u64::from_be_bytes(ms.try_into().unwrap_or_default()), seq: u64::from_be_bytes(seq.try_into().unwrap_or_default()) })
}

/// The consumer groups; each pending entry must belong to exactly one of
/// its group's consumers, as Redis requires.
fn read_groups<I: Input + ?Sized>(inp: &mut I, rdb_type: u8, s: &StreamValue) -> Result<Option<Box<Groups>>, RdbError> {
    let n = read_len(inp)?;
    inp.check_count(n, 3)?;
    let mut groups = Groups::default();
    for _ in 0..n {
        let at = inp.offset();
        let name = read_string(inp)?;
        let last_id = read_id(inp)?;
        let entries_read = if rdb_type >= types::STREAM_LISTPACKS_2 { read_len(inp)? as i64 } else { s.estimate_read(last_id) };
        let mut g = Group::new(last_id, entries_read);
        let mut owned_ids = std::collections::BTreeSet::new();
        let pel = read_len(inp)?;
        inp.check_count(pel, 25)?;
        for _ in 0..pel {
            let id = raw_id(inp)?;
            let delivered_ms = u64::from_le_bytes(inp.array::<8>()?);
            let deliveries = read_len(inp)?;
            g.pel.insert(id, Pending { consumer: Box::default(), delivered_ms, deliveries });
        }
        let consumers = read_len(inp)?;
        inp.check_count(consumers, 10)?;
        for _ in 0..consumers {
            let cname = read_string(inp)?;
            let seen_ms = u64::from_le_bytes(inp.array::<8>()?);
            // Redis 7.2's active time (-1: never); older files have none,
            // and Redis then takes the seen time as the best estimate.
            let active_ms = if rdb_type >= types::STREAM_LISTPACKS_3 {
                let t = i64::from_le_bytes(inp.array::<8>()?);
                (t >= 0).then_some(t as u64)
            } else {
                Some(seen_ms)
            };
            let mut c = Consumer { seen_ms, active_ms, ..Consumer::default() };
            let owned = read_len(inp)?;
            inp.check_count(owned, 16)?;
            for _ in 0..owned {
                let at = inp.offset();
                let id = raw_id(inp)?;
                match g.pel.get_mut(&id) {
                    Some(p) if owned_ids.insert(id) => p.consumer = cname[..].into(),
                    _ => return Err(RdbError::corrupt(at, "stream consumer pending entry not in its group's, or owned twice")),
                }
                c.pending.insert(id);
            }
            if g.consumers.insert(cname[..].into(), c).is_some() {
                return Err(RdbError::corrupt(at, "duplicate stream consumer"));
            }
        }
        if owned_ids.len() != g.pel.len() {
            return Err(RdbError::corrupt(at, "stream group pending entry without a consumer"));
        }
        if groups.by_name.insert(name[..].into(), g).is_some() {
            return Err(RdbError::corrupt(at, "duplicate stream consumer group"));
        }
    }
    Ok((!groups.by_name.is_empty()).then(|| Box::new(groups)))
}
