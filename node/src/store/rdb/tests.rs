//! Round trips of every type in each of its encodings, exact bytes against
//! payloads Redis 7.0 produced, the file reader, and corrupt input (errors,
//! never panics).

use super::*;
use crate::store::dump;
use crate::store::{SmallBytes, Value};
use crate::types::hash::{HashLimits, HashValue};
use crate::types::json::{Json, JsonDoc};
use crate::types::list::ListValue;
use crate::types::set::SetValue;
use crate::types::stream::{Fields, StreamId, StreamValue, Trim};
use crate::types::stream_group::Group;
use crate::types::zset::{ZLimits, ZSet};

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn list(items: &[&[u8]]) -> Value {
    let mut l = ListValue::default();
    for i in items {
        l.push(false, i);
    }
    Value::List(Box::new(l))
}

fn set(items: &[&[u8]]) -> Value {
    let mut s = SetValue::default();
    for i in items {
        s.add(i, Default::default());
    }
    Value::Set(Box::new(s))
}

fn hash(pairs: &[(&[u8], &[u8])]) -> Value {
    let mut h = HashValue::default();
    for (f, v) in pairs {
        h.set(f, v, HashLimits::default());
    }
    Value::Hash(Box::new(h))
}

fn zset(items: &[(&[u8], f64)]) -> Value {
    let mut z = ZSet::default();
    for (m, s) in items {
        z.insert(m, *s, ZLimits::default()).unwrap();
    }
    Value::ZSet(Box::new(z))
}

type Entry<'a> = (u64, u64, &'a [(&'a [u8], &'a [u8])]);

fn stream(entries: &[Entry]) -> StreamValue {
    let mut s = StreamValue::default();
    for (ms, seq, fields) in entries {
        s.append(StreamId { ms: *ms, seq: *seq }, fields.iter().map(|(f, v)| (&f[..], &v[..])), Trim::NODE_ENTRIES);
    }
    s
}

/// A value's content in a comparable form (type, encoding, sorted items).
fn content(v: &Value) -> (String, String, Vec<Vec<u8>>) {
    let mut buf = itoa::Buffer::new();
    let items: Vec<Vec<u8>> = match v {
        Value::Str(_) | Value::Int(_) => vec![v.as_bytes(&mut buf).unwrap().to_vec()],
        Value::List(l) => l.iter().map(|e| e.to_vec()).collect(),
        Value::Set(s) => {
            let mut m: Vec<_> = s.iter().map(|e| e.to_vec()).collect();
            m.sort();
            m
        }
        Value::Hash(h) => {
            let mut m: Vec<_> = h.iter().map(|(f, v)| [f, b"=", v].concat()).collect();
            m.sort();
            m
        }
        Value::ZSet(z) => {
            let mut m = Vec::new();
            z.for_each(|mem, s| m.push([mem, b"=", s.to_bits().to_string().as_bytes()].concat()));
            m
        }
        Value::Stream(s) => {
            let mut m: Vec<Vec<u8>> = s
                .iter()
                .map(|(id, f)| {
                    format!("{}:{:?}", id.text(), f.iter().map(|(a, b)| (a.to_vec(), b.to_vec())).collect::<Vec<_>>()).into_bytes()
                })
                .collect();
            m.push(format!("last={} added={} maxdel={}", s.last_id.text(), s.added, s.max_deleted.text()).into_bytes());
            m.push(format!("{:?}", s.groups).into_bytes());
            m
        }
        Value::Json(j) => vec![j.to_text().into_owned()],
    };
    (v.type_name().to_string(), v.encoding().to_string(), items)
}

fn round_trip(v: &Value) -> Value {
    let p = dump::encode(v);
    let back = dump::decode(&p, Limits::default()).unwrap_or_else(|e| panic!("{} does not round trip: {e:?}", v.type_name()));
    assert_eq!(content(&back), content(v));
    back
}

/// DUMP payloads made by redis-server 7.0.15 for the same data.
#[test]
fn payloads_are_byte_identical_to_redis() {
    let cases: Vec<(Value, &str)> = vec![
        (Value::string(b"hello"), "000568656c6c6f0a006372df766534200a"),
        (Value::Int(12345), "00c139300a009d94ea2793fc08b9"),
        (list(&[b"a", b"1", b"b"]), "1201020f0f00000003008161020101816202ff0a009043a34ceb8e1b1c"),
        (hash(&[(b"f", b"v")]), "100d0d0000000200816602817602ff0a0020f13d442354089d"),
        (set(&[b"3", b"1", b"2"]), "0b0e02000000030000000100020003000a00a5025ce26d6e4d1b"),
        (zset(&[(b"a", 1.5), (b"b", 2.0)]), "111414000000040081610283312e35048162020201ff0a00fa02b425af188763"),
        (
            Value::Stream(Box::new(stream(&[(1, 1, &[(b"f", b"v")])]))),
            "130110000000000000000100000000000000011d1d0000000a0001010001010181660200010201000100018176020401ff0101010101000001000a00ff55ab626ac035db",
        ),
    ];
    for (v, want) in cases {
        assert_eq!(hex(&dump::encode(&v)), want, "{}", v.type_name());
        let back = dump::decode(&unhex(want), Limits::default()).unwrap();
        assert_eq!(content(&back), content(&v));
    }
}

#[test]
fn crc_check_value() {
    assert_eq!(crc64(b"123456789"), 0xe9c6_d914_c4b8_d9ca);
    let mut c = Crc64::new();
    c.update(b"1234");
    c.update(b"56789");
    assert_eq!(c.finish(), 0xe9c6_d914_c4b8_d9ca);
}

#[test]
fn strings_of_every_encoding() {
    let long: Vec<u8> = (0..100_000u32).map(|i| b"abcdefgh"[(i % 8) as usize]).collect();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let random: Vec<u8> = (0..5000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect();
    for v in [
        Value::string(b""),
        Value::string(b"x"),
        Value::Str(SmallBytes::new(b"007")),
        Value::Str(SmallBytes::new(b"-0")),
        Value::string(&long),
        Value::string(&random),
        Value::string(&[b'a'; 21]),
        Value::string(&[b'a'; 20]),
    ] {
        round_trip(&v);
    }
    for n in
        [0, 1, -1, 127, -128, 128, -129, 32767, -32768, 32768, i32::MAX as i64, i32::MIN as i64, i32::MAX as i64 + 1, i64::MAX, i64::MIN]
    {
        let back = round_trip(&Value::Int(n));
        assert!(matches!(back, Value::Int(m) if m == n));
    }
    // Widths: i8 and i16 and i32 use the integer encodings, wider ones text.
    assert_eq!(dump::encode(&Value::Int(-3))[..3], [0, 0xc0, 0xfd]);
    assert_eq!(dump::encode(&Value::Int(300))[..2], [0, 0xc1]);
    assert_eq!(dump::encode(&Value::Int(70000))[..2], [0, 0xc2]);
    assert_eq!(dump::encode(&Value::Int(1 << 40))[..2], [0, 13]);
    // Long repetitive strings are LZF-compressed; incompressible ones raw.
    let p = dump::encode(&Value::string(&long));
    assert_eq!(p[1], 0xc3);
    assert!(p.len() < 2000);
    assert_ne!(dump::encode(&Value::string(&random))[1], 0xc3);
}

#[test]
fn aggregates_in_both_encodings() {
    let big: Vec<Vec<u8>> = (0..1000).map(|i| format!("member-{i}").into_bytes()).collect();
    let big_refs: Vec<&[u8]> = big.iter().map(|b| &b[..]).collect();
    let long = vec![b'z'; 10_000];
    // Lists: one node, several nodes, a huge element, integers.
    round_trip(&list(&[b"a"]));
    round_trip(&list(&big_refs));
    round_trip(&list(&[b"x", &long, b"-5", b"99999999999", b""]));
    // Sets: intset (16/32/64-bit), plain.
    round_trip(&set(&[b"1", b"-2", b"3"]));
    round_trip(&set(&[b"1", b"100000"]));
    round_trip(&set(&[b"1", b"-9223372036854775808"]));
    round_trip(&set(&[b"1", b"a"]));
    round_trip(&set(&big_refs));
    let ints: Vec<Vec<u8>> = (0..600).map(|i| i.to_string().into_bytes()).collect();
    let v = set(&ints.iter().map(|b| &b[..]).collect::<Vec<_>>());
    assert_eq!(object_type(&v), types::SET);
    round_trip(&v);
    // Hashes: listpack and table.
    let h = round_trip(&hash(&[(b"a", b"1"), (b"b", b""), (b"", b"x")]));
    assert_eq!(h.encoding(), "listpack");
    let pairs: Vec<(&[u8], &[u8])> = big_refs.iter().map(|m| (*m, &m[..3])).collect();
    assert_eq!(round_trip(&hash(&pairs)).encoding(), "hashtable");
    assert_eq!(round_trip(&hash(&[(b"f", &long)])).encoding(), "hashtable");
    // Sorted sets: listpack (integer, fractional, infinite, negative zero
    // scores) and the large encoding.
    let z = round_trip(&zset(&[
        (b"a", 1.0),
        (b"b", 0.1),
        (b"c", f64::INFINITY),
        (b"d", f64::NEG_INFINITY),
        (b"e", -0.0),
        (b"f", 1e300),
        (b"g", -2.5e-300),
        (b"h", 4503599627370497.0),
    ]));
    assert_eq!(z.encoding(), "listpack");
    let items: Vec<(&[u8], f64)> = big_refs.iter().enumerate().map(|(i, m)| (*m, i as f64 / 3.0)).collect();
    let z = zset(&items);
    assert_eq!(object_type(&z), types::ZSET_2);
    assert_eq!(round_trip(&z).encoding(), "skiplist");
}

#[test]
fn streams() {
    let empty = StreamValue::default();
    round_trip(&Value::Stream(Box::new(empty)));
    let mut s = stream(&[
        (1, 0, &[(b"a", b"1"), (b"b", b"2")]),
        (1, 1, &[(b"a", b"3"), (b"b", b"4")]),
        (2, 0, &[(b"c", b"5")]),
        (5, 7, &[(b"a", b"6"), (b"b", b"7")]),
    ]);
    assert!(s.remove(StreamId { ms: 1, seq: 1 }));
    round_trip(&Value::Stream(Box::new(s.clone())));
    // Many entries across nodes, varied fields and big values.
    let big = vec![b'q'; 3000];
    for i in 0..450u64 {
        let v = i.to_string();
        let fields = if i % 7 == 0 {
            Fields::from_pairs([(&b"other"[..], &big[..])])
        } else {
            Fields::from_pairs([(&b"a"[..], v.as_bytes()), (b"b", b"x")])
        };
        s.append(StreamId { ms: 10 + i / 3, seq: i % 3 }, fields.iter(), Trim::NODE_ENTRIES);
    }
    s.remove(StreamId { ms: 20, seq: 0 });
    s.trim(&crate::types::stream::Trim { maxlen: Some(400), ..Default::default() });
    let back = round_trip(&Value::Stream(Box::new(s)));
    let Value::Stream(b) = back else { panic!() };
    assert_eq!(b.max_deleted, StreamId { ms: 20, seq: 0 });
}

#[test]
fn json_documents() {
    for text in [r#"{"a":[1,2.5,"x",null,true,{"b":{}}],"c":"\u00e9"}"#, "3", r#""s""#, "[]"] {
        let v = Value::Json(Box::new(JsonDoc::new(Json::parse(text.as_bytes()).unwrap())));
        let p = dump::encode(&v);
        assert_eq!(p[0], types::MODULE_2);
        round_trip(&v);
    }
}

/// RedisJSON 1.x's node-by-node form (encoding version 0).
#[test]
fn json_encoding_version_0() {
    let mut body = vec![types::MODULE_2];
    encode::put_len(&mut body, module::module_id("ReJSON-RL", 0));
    let uint = |b: &mut Vec<u8>, n: u64| {
        encode::put_len(b, 2);
        encode::put_len(b, n);
    };
    // {"k": [7, "s"]}
    uint(&mut body, 0x20);
    uint(&mut body, 1);
    uint(&mut body, 0x80);
    encode::put_len(&mut body, 5);
    encode::put_string(&mut body, b"k");
    uint(&mut body, 0x40);
    uint(&mut body, 2);
    uint(&mut body, 0x8);
    encode::put_len(&mut body, 1);
    encode::put_len(&mut body, 7);
    uint(&mut body, 0x2);
    encode::put_len(&mut body, 5);
    encode::put_string(&mut body, b"s");
    encode::put_len(&mut body, 0);
    dump::seal(&mut body);
    let v = dump::decode(&body, Limits::default()).unwrap();
    let Value::Json(j) = v else { panic!("json") };
    assert_eq!(&*j.to_text(), br#"{"k":[7,"s"]}"#);
}

/// A module value we cannot hold is refused naming the key and module
/// type, and read past: the file reader goes on with the next record.
#[test]
fn other_module_types_are_refused_by_name() {
    let mut file = Vec::new();
    write_header(&mut file, &[]);
    file.push(types::MODULE_2);
    encode::put_string(&mut file, b"bf");
    encode::put_len(&mut file, module::module_id("MBbloom--", 1));
    for (kind, item) in [(2u64, &b"\x07"[..]), (5, b"\x03abc")] {
        encode::put_len(&mut file, kind);
        file.extend_from_slice(item);
    }
    encode::put_len(&mut file, 4);
    file.extend_from_slice(&0.5f64.to_le_bytes());
    encode::put_len(&mut file, 0);
    write_entry(&mut file, b"after", &Value::string(b"x"), None);
    write_eof(&mut file);
    file.extend_from_slice(&[0; 8]);
    let mut r = Reader::new(&file[..]).unwrap();
    match r.next() {
        Err(e @ RdbError::UnsupportedType { .. }) => assert!(e.to_string().contains("'bf'") && e.to_string().contains("MBbloom--"), "{e}"),
        other => panic!("{:?}", other.err()),
    }
    assert!(matches!(r.next(), Ok(Some(Item::Entry { key, .. })) if key == b"after"));
    assert!(matches!(r.next(), Ok(None)));
}

#[test]
fn restore_envelope_checks() {
    let mut p = dump::encode(&Value::string(b"x"));
    assert!(dump::decode(&p, Limits::default()).is_ok());
    // Version 11 is refused, older ones accepted.
    let n = p.len();
    for (ver, ok) in [(11u16, false), (9, true), (1, true)] {
        let mut q = p[..n - 10].to_vec();
        q.extend_from_slice(&ver.to_le_bytes());
        let crc = crc64(&q);
        q.extend_from_slice(&crc.to_le_bytes());
        assert_eq!(dump::decode(&q, Limits::default()).is_ok(), ok, "version {ver}");
    }
    p[n - 1] ^= 1;
    assert_eq!(dump::decode(&p, Limits::default()).err(), Some(dump::DumpError::VersionOrChecksum));
    let mut bad = vec![0u8, 5, b'a'];
    dump::seal(&mut bad);
    assert_eq!(dump::decode(&bad, Limits::default()).err(), Some(dump::DumpError::BadFormat));
    let mut empty_list = vec![types::LIST_QUICKLIST_2, 0];
    dump::seal(&mut empty_list);
    assert_eq!(dump::decode(&empty_list, Limits::default()).err(), Some(dump::DumpError::BadFormat));
}

fn sample_values() -> Vec<Value> {
    let mut s = stream(&[(1, 0, &[(b"a", b"1")]), (1, 1, &[(b"a", b"2")]), (3, 0, &[(b"b", b"3"), (b"c", b"4")])]);
    s.remove(StreamId { ms: 1, seq: 1 });
    vec![
        Value::string(b"some value that compresses compresses compresses"),
        Value::Int(-70000),
        list(&[b"a", b"12", b"bb"]),
        set(&[b"1", b"2"]),
        set(&[b"x", b"2"]),
        hash(&[(b"f", b"v"), (b"g", b"1")]),
        zset(&[(b"a", 1.5), (b"b", -3.0)]),
        Value::Stream(Box::new(s)),
        Value::Json(Box::new(JsonDoc::new(Json::parse(br#"{"a":[1,"b"]}"#).unwrap()))),
    ]
}

/// Every truncation and many bit flips of valid payloads, re-sealed so
/// they get past the checksum: errors or values, never a panic.
#[test]
fn corrupt_payloads_never_panic() {
    for v in sample_values() {
        let p = dump::encode(&v);
        let body = &p[..p.len() - 10];
        for n in 0..body.len() {
            let mut q = body[..n].to_vec();
            dump::seal(&mut q);
            assert!(dump::decode(&q, Limits::default()).is_err(), "{} truncated to {n} decoded", v.type_name());
        }
        for i in 0..body.len() {
            for bit in 0..8 {
                let mut q = body.to_vec();
                q[i] ^= 1 << bit;
                dump::seal(&mut q);
                if let Ok(v) = dump::decode(&q, Limits::default()) {
                    // Whatever decodes must encode and decode again.
                    dump::decode(&dump::encode(&v), Limits::default()).unwrap();
                }
            }
        }
    }
}

fn sample_file() -> Vec<u8> {
    let mut out = Vec::new();
    write_header(&mut out, &[("redis-ver", b"7.0.15"), ("redis-bits", b"64")]);
    write_function(&mut out, b"#!lua name=lib\nredis.register_function('f', function() return 1 end)");
    write_select_db(&mut out, 0);
    write_resize_db(&mut out, 9, 1);
    for (i, v) in sample_values().iter().enumerate() {
        write_entry(&mut out, format!("k{i}").as_bytes(), v, (i == 2).then_some(1_900_000_000_000));
    }
    write_select_db(&mut out, 3);
    write_entry(&mut out, b"other", &Value::string(b"db3"), None);
    write_eof(&mut out);
    let crc = crc64(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

#[test]
fn file_round_trip() {
    let file = sample_file();
    assert_eq!(&file[..9], b"REDIS0010");
    let mut r = Reader::new(&file[..]).unwrap();
    let mut items = Vec::new();
    while let Some(item) = r.next().unwrap() {
        items.push(item);
    }
    assert_eq!(r.offset(), file.len() as u64);
    assert!(r.next().unwrap().is_none());
    assert!(matches!(&items[0], Item::Aux(k, v) if k == b"redis-ver" && v == b"7.0.15"));
    assert!(matches!(&items[2], Item::Function(c) if c.starts_with(b"#!lua")));
    assert!(matches!(items[3], Item::SelectDb(0)));
    assert!(matches!(items[4], Item::ResizeDb { keys: 9, expires: 1 }));
    let values = sample_values();
    for (i, v) in values.iter().enumerate() {
        let Item::Entry { key, value, expire_at_ms } = &items[5 + i] else { panic!("entry {i}") };
        assert_eq!(key, format!("k{i}").as_bytes());
        assert_eq!(content(value), content(v));
        assert_eq!(*expire_at_ms, (i == 2).then_some(1_900_000_000_000));
    }
    assert!(matches!(items[5 + values.len()], Item::SelectDb(3)));
    assert_eq!(items.len(), 7 + values.len());
}

#[test]
fn file_checks() {
    let file = sample_file();
    // A zero checksum is "not computed".
    let mut unsummed = file.clone();
    let n = unsummed.len();
    unsummed[n - 8..].fill(0);
    let mut r = Reader::new(&unsummed[..]).unwrap();
    while r.next().unwrap().is_some() {}
    let mut wrong = file.clone();
    wrong[n - 1] ^= 1;
    let mut r = Reader::new(&wrong[..]).unwrap();
    let err = loop {
        match r.next() {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("accepted"),
            Err(e) => break e,
        }
    };
    assert!(matches!(err, RdbError::Checksum));
    assert!(matches!(Reader::new(&b"REDIS0013"[..]), Err(RdbError::Version(13))));
    assert!(matches!(Reader::new(&b"REDIT0010"[..]), Err(RdbError::Corrupt { .. })));
    // Truncated anywhere: an error naming an offset, never a panic.
    for cut in 9..file.len() {
        let mut r = Reader::new(&file[..cut]).unwrap();
        let res = loop {
            match r.next() {
                Ok(Some(_)) => continue,
                other => break other,
            }
        };
        assert!(res.is_err(), "truncated at {cut} accepted");
    }
    // Flipped bytes: errors (mostly the checksum), never a panic.
    for i in 9..file.len() {
        let mut bad = file.clone();
        bad[i] ^= 0xa5;
        if let Ok(mut r) = Reader::new(&bad[..]) {
            while let Ok(Some(_)) = r.next() {}
        }
    }
}

#[test]
fn idle_freq_module_aux_and_old_expiry_are_read() {
    let mut out = Vec::new();
    write_header(&mut out, &[]);
    // A module AUX record: ID, when (UINT 2), then items to EOF.
    out.push(opcode::MODULE_AUX);
    encode::put_len(&mut out, module::module_id("scripting", 1));
    encode::put_len(&mut out, 2);
    encode::put_len(&mut out, 2);
    encode::put_len(&mut out, 5);
    encode::put_string(&mut out, b"aux data");
    encode::put_len(&mut out, 4);
    out.extend_from_slice(&1.5f64.to_le_bytes());
    encode::put_len(&mut out, 0);
    out.push(opcode::IDLE);
    encode::put_len(&mut out, 1000);
    out.push(opcode::EXPIRETIME);
    out.extend_from_slice(&2_000_000_000u32.to_le_bytes());
    write_entry(&mut out, b"a", &Value::string(b"1"), None);
    out.push(opcode::FREQ);
    out.push(7);
    write_entry(&mut out, b"b", &Value::string(b"2"), None);
    write_eof(&mut out);
    out.extend_from_slice(&[0; 8]);
    let mut r = Reader::new(&out[..]).unwrap();
    let Some(Item::Entry { key, expire_at_ms, .. }) = r.next().unwrap() else { panic!() };
    assert_eq!((key.as_slice(), expire_at_ms, r.lru_idle(), r.lfu_freq()), (&b"a"[..], Some(2_000_000_000_000), Some(1000), None));
    let Some(Item::Entry { key, expire_at_ms, .. }) = r.next().unwrap() else { panic!() };
    assert_eq!((key.as_slice(), expire_at_ms, r.lru_idle(), r.lfu_freq()), (&b"b"[..], None, None, Some(7)));
    assert!(r.next().unwrap().is_none());
}

/// Redis 7.2's encodings (RDB 11): sets as listpacks, and streams whose
/// consumers carry an active time.
#[test]
fn reads_redis_7_2_encodings() {
    let mut lp = listpack::ListpackWriter::new();
    for m in [&b"a"[..], b"7", b"bb"] {
        lp.push(m);
    }
    let mut body = vec![types::SET_LISTPACK];
    encode::put_string(&mut body, &lp.finish());
    let mut inp = SliceInput::new(&body[1..]);
    let v = read_object(&mut inp, types::SET_LISTPACK, b"s", Limits::default()).unwrap().unwrap();
    assert_eq!(content(&v), content(&set(&[b"a", b"7", b"bb"])));

    let s = stream(&[(1, 0, &[(b"f", b"v")]), (2, 0, &[(b"f", b"w")])]);
    let mut body = Vec::new();
    encode::write_object(&mut body, &Value::Stream(Box::new(s.clone())));
    assert_eq!(body.pop(), Some(0), "no consumer groups");
    encode::put_len(&mut body, 1); // one group
    encode::put_string(&mut body, b"group");
    encode::put_len(&mut body, 1); // last delivered ID
    encode::put_len(&mut body, 0);
    encode::put_len(&mut body, 1); // entries read
    encode::put_len(&mut body, 1); // pending entries
    let mut id = [0u8; 16];
    id[7] = 1;
    body.extend_from_slice(&id);
    body.extend_from_slice(&1_700_000_000_000u64.to_le_bytes());
    encode::put_len(&mut body, 1); // delivery count
    encode::put_len(&mut body, 1); // consumers
    encode::put_string(&mut body, b"alice");
    body.extend_from_slice(&1_700_000_000_000u64.to_le_bytes()); // seen
    body.extend_from_slice(&1_700_000_000_001u64.to_le_bytes()); // active
    encode::put_len(&mut body, 1);
    body.extend_from_slice(&id);
    let mut inp = SliceInput::new(&body);
    let v = read_object(&mut inp, types::STREAM_LISTPACKS_3, b"x", Limits::default()).unwrap().unwrap();
    assert!(inp.is_empty());
    let mut want = s.clone();
    let mut g = Group::new(StreamId { ms: 1, seq: 0 }, 1);
    g.touch_consumer(b"alice", 1_700_000_000_000);
    g.deliver(StreamId { ms: 1, seq: 0 }, b"alice", 1_700_000_000_000);
    let mut seen_only = want.clone();
    seen_only.groups.get_or_insert_with(Box::default).by_name.insert(b"group"[..].into(), g.clone());
    g.mark_active(b"alice", 1_700_000_000_001);
    want.groups.get_or_insert_with(Box::default).by_name.insert(b"group"[..].into(), g);
    assert_eq!(content(&v), content(&Value::Stream(Box::new(want.clone()))));
    // Written back (as 7.0 does, without active times) and read again:
    // the active time is then the seen time, as Redis 7.2 loads old files.
    let mut expected = seen_only;
    if let Some(g) = expected.groups.as_mut().and_then(|gs| gs.by_name.get_mut(&b"group"[..])) {
        g.mark_active(b"alice", 1_700_000_000_000);
    }
    let back = dump::decode(&dump::encode(&Value::Stream(Box::new(want))), Limits::default()).expect("decodes");
    assert_eq!(content(&back), content(&Value::Stream(Box::new(expected))));
    // A pending entry no consumer owns is refused.
    let mut orphan = body.clone();
    let cut = orphan.len() - (1 + 5 + 1 + 8 + 8 + 1 + 16);
    orphan.truncate(cut);
    encode::put_len(&mut orphan, 0); // no consumers
    let mut inp = SliceInput::new(&orphan);
    assert!(read_object(&mut inp, types::STREAM_LISTPACKS_3, b"x", Limits::default()).is_err());
    // Read as a 7.0 stream, the same bytes leave 8 unread.
    let mut inp = SliceInput::new(&body);
    let r = read_object(&mut inp, types::STREAM_LISTPACKS_2, b"x", Limits::default());
    assert!(r.is_err() || !inp.is_empty());
}

#[test]
fn hashes_with_field_expirations_are_refused_by_name() {
    let mut inp = SliceInput::new(&[0]);
    match read_object(&mut inp, types::HASH_LISTPACK_EX, b"h", Limits::default()) {
        Err(e @ RdbError::UnsupportedType { .. }) => assert!(e.to_string().contains("field expirations"), "{e}"),
        other => panic!("{:?}", other.err()),
    }
}

/// Random multi-byte mutations (overwrites, insertions, deletions) of
/// re-sealed payloads: errors or values, never a panic.
#[test]
fn random_mutations_never_panic() {
    let iterations: usize = std::env::var("RDB_MUTATIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(3000);
    let mut x = 0x1234_5678_9abc_def1u64;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let bodies: Vec<Vec<u8>> = sample_values()
        .iter()
        .map(|v| {
            let p = dump::encode(v);
            p[..p.len() - 10].to_vec()
        })
        .collect();
    for _ in 0..iterations {
        let mut b = bodies[rnd() as usize % bodies.len()].clone();
        for _ in 0..1 + rnd() % 4 {
            let i = rnd() as usize % b.len().max(1);
            match rnd() % 3 {
                0 if !b.is_empty() => b[i] = rnd() as u8,
                1 => b.insert(i.min(b.len()), rnd() as u8),
                _ if b.len() > 1 => {
                    b.remove(i);
                }
                _ => {}
            }
        }
        dump::seal(&mut b);
        if let Ok(v) = dump::decode(&b, Limits { hash: HashLimits { max_entries: 2, max_value: 4 }, ..Limits::default() }) {
            dump::decode(&dump::encode(&v), Limits::default()).unwrap();
        }
    }
}

/// With compression off (`rdbcompression no`) no string is LZF-encoded,
/// and the records read back the same.
#[test]
fn compression_can_be_turned_off() {
    let long = vec![b'a'; 1000];
    let values = [Value::string(&long), list(&[&long, b"x"]), hash(&[(b"f", b"v")]), set(&[&long, b"y"])];
    for v in &values {
        let mut on = Vec::new();
        write_entry(&mut on, &long, v, None);
        let mut off = Vec::new();
        write_entry_with(&mut off, &long, v, None, false);
        assert!(off.len() > on.len() || matches!(v, Value::Hash(_)), "{}", v.type_name());
        let mut inp = SliceInput::new(&off[1..]);
        let key = decode::read_string(&mut inp).unwrap();
        assert_eq!(key, long);
        let back = read_object(&mut inp, off[0], &key, Limits::default()).unwrap().unwrap();
        assert_eq!(content(&back), content(v));
    }
    let mut off = Vec::new();
    write_object_with(&mut off, &Value::string(&long), false);
    assert_eq!(off.len(), 2 + long.len());
}

/// A big value's record written in chunks is the record written whole,
/// byte for byte, and no chunk is much bigger than asked.
#[test]
fn spilling_writes_the_same_record_in_bounded_chunks() {
    let items: Vec<Vec<u8>> = (0..5000).map(|i| format!("member-{i}-{}", "x".repeat(i % 40)).into_bytes()).collect();
    let refs: Vec<&[u8]> = items.iter().map(|i| &i[..]).collect();
    let pairs: Vec<(&[u8], &[u8])> = refs.iter().map(|i| (*i, *i)).collect();
    let scored: Vec<(&[u8], f64)> = refs.iter().enumerate().map(|(n, i)| (*i, n as f64 * 0.5)).collect();
    for v in [list(&refs), set(&refs), hash(&pairs), zset(&scored), Value::Str(SmallBytes::new(&[7u8; 3000]))] {
        let mut whole = Vec::new();
        write_entry(&mut whole, b"big", &v, Some(42));
        let (mut chunked, mut buf, mut biggest, mut chunks) = (Vec::new(), Vec::new(), 0, 0);
        write_entry_spilling(&mut buf, b"big", &v, Some(42), 4096, &mut |c| {
            biggest = biggest.max(c.len());
            chunks += 1;
            chunked.extend_from_slice(c);
            c.clear();
        });
        chunked.extend_from_slice(&buf);
        assert_eq!(hex(&chunked), hex(&whole), "{}", v.type_name());
        assert!(biggest < 4096 + 8192 + 64, "{}: a chunk of {biggest} bytes", v.type_name());
        if !matches!(v, Value::Str(_)) {
            assert!(chunks > 5, "{}: {chunks} chunks", v.type_name());
        }
    }
}

#[test]
fn an_empty_plain_quicklist_node_is_refused() {
    // Redis's "corrupt payload: quicklist encoded_len is 0": one plain
    // node holding nothing.
    let p = b"\x12\x01\x01\x00\x0a\x00\x8f\xc6\xc0\x57\x1c\x0a\xb3\x3c";
    assert!(dump::verify(p).is_ok(), "the checksum is good");
    assert!(dump::decode(p, Limits::default()).is_err());
}
