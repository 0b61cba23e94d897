//! JSON commands end to end: a real server driven by redis-rs (RESP2 and
//! RESP3) and by raw sockets for exact reply bytes. Covers the e-commerce
//! order flow, every command, multi-key commands across shards (JSON.MSET
//! atomic for concurrent readers) and counters hammered by many clients.

use damselfly_tests::Server;
use redis::{AsyncCommands, Value};

const ORDER: &str = r#"{"id":"order:1","customer":{"id":"cust-7731","name":"Ada Lovelace","email":"ada@example.com"},"items":[{"sku":"SKU-1001","name":"Brass gear set","quantity":1,"price":24.5},{"sku":"SKU-2002","name":"Punched cards","quantity":3,"price":9.99}],"total":54.47,"currency":"GBP","status":"paid"}"#;

async fn q<T: redis::FromRedisValue>(c: &mut redis::aio::MultiplexedConnection, args: &[&str]) -> T {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    match cmd.query_async(c).await {
        Ok(v) => v,
        Err(e) => panic!("{args:?}: {e}"),
    }
}

async fn q_err(c: &mut redis::aio::MultiplexedConnection, args: &[&str]) -> String {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    match cmd.query_async::<Value>(c).await {
        Ok(v) => panic!("{args:?} succeeded: {v:?}"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn ecommerce_order_cache_update_read() {
    let s = Server::start();
    let mut c = s.conn().await;
    // Cache the order.
    assert_eq!(q::<String>(&mut c, &["JSON.SET", "order:1", "$", ORDER]).await, "OK");
    // One item's quantity changes.
    assert_eq!(q::<String>(&mut c, &["JSON.SET", "order:1", "$.items[0].quantity", "2"]).await, "OK");
    assert_eq!(q::<String>(&mut c, &["JSON.GET", "order:1", "$.items[0].quantity"]).await, "[2]");
    // Read the total, `$` and legacy forms.
    assert_eq!(q::<String>(&mut c, &["JSON.GET", "order:1", "$.total"]).await, "[54.47]");
    assert_eq!(q::<String>(&mut c, &["JSON.GET", "order:1", ".total"]).await, "54.47");
    let total: f64 = q::<String>(&mut c, &["JSON.GET", "order:1", ".total"]).await.parse().unwrap();
    assert_eq!(total, 54.47);
    // Recompute the total from the items, as a shop would, and store it.
    let prices: String = q(&mut c, &["JSON.GET", "order:1", "$.items[*].price"]).await;
    let qty: String = q(&mut c, &["JSON.GET", "order:1", "$.items[*].quantity"]).await;
    assert_eq!((prices.as_str(), qty.as_str()), ("[24.5,9.99]", "[2,3]"));
    assert_eq!(q::<String>(&mut c, &["JSON.SET", "order:1", "$.total", "78.97"]).await, "OK");
    // The whole document, key order preserved.
    let want = ORDER.replace("\"quantity\":1", "\"quantity\":2").replace("54.47", "78.97");
    assert_eq!(q::<String>(&mut c, &["JSON.GET", "order:1"]).await, want);
    assert_eq!(q::<String>(&mut c, &["JSON.GET", "order:1", "$"]).await, format!("[{want}]"));
    assert_eq!(q::<String>(&mut c, &["TYPE", "order:1"]).await, "ReJSON-RL");
    // Filters over the items.
    assert_eq!(q::<String>(&mut c, &["JSON.GET", "order:1", "$.items[?(@.price < 10)].sku"]).await, "[\"SKU-2002\"]");
    assert_eq!(q::<String>(&mut c, &["JSON.GET", "order:1", "$..sku"]).await, "[\"SKU-1001\",\"SKU-2002\"]");
    // Status change and an item added.
    assert_eq!(q::<String>(&mut c, &["JSON.SET", "order:1", "$.status", "\"shipped\""]).await, "OK");
    let n: Vec<i64> = q(&mut c, &["JSON.ARRAPPEND", "order:1", "$.items", r#"{"sku":"SKU-3003","quantity":1,"price":45.0}"#]).await;
    assert_eq!(n, vec![3]);
    assert_eq!(q::<i64>(&mut c, &["JSON.ARRLEN", "order:1", ".items"]).await, 3);
    // Invalid JSON leaves the order unchanged.
    let e = q_err(&mut c, &["JSON.SET", "order:1", "$.total", "{oops"]).await;
    // redis-rs reads the first word as the error code: RedisJSON's text is
    // "key must be a string at line 1 column 2".
    assert!(e.contains("must be a string at line 1 column 2"), "{e}");
    assert_eq!(q::<String>(&mut c, &["JSON.GET", "order:1", ".total"]).await, "78.97");
}

#[tokio::test]
async fn every_command_through_redis_rs() {
    let s = Server::start();
    let mut c = s.conn().await;
    let doc = r#"{"name":"shoe","price":10,"tags":["a","b"],"stock":{"eu":3,"us":5},"active":true,"note":null}"#;
    assert_eq!(q::<String>(&mut c, &["JSON.SET", "p", "$", doc]).await, "OK");
    assert_eq!(q::<Option<String>>(&mut c, &["JSON.SET", "p", "$", doc, "NX"]).await, None);
    assert_eq!(q::<Option<String>>(&mut c, &["JSON.SET", "missing", "$", doc, "XX"]).await, None);
    assert_eq!(q::<String>(&mut c, &["JSON.GET", "p", "$.name", "$.price"]).await, r#"{"$.name":["shoe"],"$.price":[10]}"#);
    assert_eq!(
        q::<String>(&mut c, &["JSON.GET", "p", "INDENT", "  ", "NEWLINE", "\n", "SPACE", " ", ".stock"]).await,
        "{\n  \"eu\": 3,\n  \"us\": 5\n}"
    );
    assert_eq!(q::<Option<String>>(&mut c, &["JSON.GET", "nope"]).await, None);
    assert_eq!(q::<String>(&mut c, &["JSON.MERGE", "p", "$", r#"{"note":null,"color":"red"}"#]).await, "OK");
    assert_eq!(q::<Vec<String>>(&mut c, &["JSON.OBJKEYS", "p"]).await, vec!["name", "price", "tags", "stock", "active", "color"]);
    assert_eq!(q::<i64>(&mut c, &["JSON.OBJLEN", "p", ".stock"]).await, 2);
    assert_eq!(q::<Vec<Option<i64>>>(&mut c, &["JSON.OBJLEN", "p", "$.*"]).await, vec![None, None, None, Some(2), None, None]);
    assert_eq!(q::<String>(&mut c, &["JSON.TYPE", "p", ".price"]).await, "integer");
    assert_eq!(q::<Vec<String>>(&mut c, &["JSON.TYPE", "p", "$.tags[*]"]).await, vec!["string", "string"]);
    assert_eq!(q::<String>(&mut c, &["JSON.NUMINCRBY", "p", "$.price", "2.5"]).await, "[12.5]");
    assert_eq!(q::<String>(&mut c, &["JSON.NUMMULTBY", "p", ".price", "2"]).await, "25.0");
    assert_eq!(q::<String>(&mut c, &["JSON.NUMINCRBY", "p", "$.stock.*", "1"]).await, "[4,6]");
    assert_eq!(q::<Vec<i64>>(&mut c, &["JSON.STRAPPEND", "p", "$.name", "\"s\""]).await, vec![5]);
    assert_eq!(q::<i64>(&mut c, &["JSON.STRLEN", "p", ".name"]).await, 5);
    assert_eq!(q::<Vec<i64>>(&mut c, &["JSON.TOGGLE", "p", "$.active"]).await, vec![0]);
    assert_eq!(q::<String>(&mut c, &["JSON.TOGGLE", "p", ".active"]).await, "true");
    assert_eq!(q::<i64>(&mut c, &["JSON.ARRAPPEND", "p", ".tags", "\"c\"", "\"d\""]).await, 4);
    assert_eq!(q::<Vec<i64>>(&mut c, &["JSON.ARRINSERT", "p", "$.tags", "0", "\"z\""]).await, vec![5]);
    assert_eq!(q::<i64>(&mut c, &["JSON.ARRINDEX", "p", ".tags", "\"c\""]).await, 3);
    assert_eq!(q::<Vec<i64>>(&mut c, &["JSON.ARRINDEX", "p", "$.tags", "\"x\""]).await, vec![-1]);
    assert_eq!(q::<String>(&mut c, &["JSON.ARRPOP", "p", ".tags"]).await, "\"d\"");
    assert_eq!(q::<Vec<String>>(&mut c, &["JSON.ARRPOP", "p", "$.tags", "0"]).await, vec!["\"z\""]);
    assert_eq!(q::<Vec<i64>>(&mut c, &["JSON.ARRTRIM", "p", "$.tags", "0", "1"]).await, vec![2]);
    assert_eq!(q::<Vec<i64>>(&mut c, &["JSON.ARRLEN", "p", "$.tags"]).await, vec![2]);
    assert_eq!(q::<i64>(&mut c, &["JSON.CLEAR", "p", "$.stock"]).await, 1);
    assert_eq!(q::<String>(&mut c, &["JSON.GET", "p", ".stock"]).await, "{}");
    let resp: Value = q(&mut c, &["JSON.RESP", "p", ".tags"]).await;
    assert_eq!(
        resp,
        Value::Array(vec![Value::SimpleString("[".into()), Value::BulkString(b"a".to_vec()), Value::BulkString(b"b".to_vec())])
    );
    let mem: i64 = q(&mut c, &["JSON.DEBUG", "MEMORY", "p"]).await;
    assert!(mem > 100, "{mem}");
    assert_eq!(q::<i64>(&mut c, &["JSON.DEL", "p", "$.tags[0]"]).await, 1);
    assert_eq!(q::<i64>(&mut c, &["JSON.FORGET", "p", ".color"]).await, 1);
    assert_eq!(q::<String>(&mut c, &["JSON.GET", "p"]).await, r#"{"name":"shoes","price":25.0,"tags":["b"],"stock":{},"active":true}"#);
    assert_eq!(q::<i64>(&mut c, &["JSON.DEL", "p"]).await, 1);
    assert!(!c.exists::<_, bool>("p").await.unwrap());
    // Errors as RedisJSON words them.
    assert!(q_err(&mut c, &["JSON.SET", "x", "$.a", "1"]).await.contains("new objects must be created at the root"));
    assert_eq!(q::<String>(&mut c, &["JSON.SET", "order", "$", "{}"]).await, "OK");
    let _: () = c.set("str", "v").await.unwrap();
    assert!(q_err(&mut c, &["JSON.GET", "str"]).await.contains("WRONGTYPE"));
    assert!(q_err(&mut c, &["JSON.GET", "order", "$["]).await.contains("occurred on position 2"));
    // A missing key answers nil before its path is looked at, as in RedisJSON.
    assert_eq!(q::<Option<String>>(&mut c, &["JSON.GET", "x", "$["]).await, None);
    assert!(q_err(&mut c, &["JSON.ARRAPPEND", "x", "$", "1"]).await.contains("key that doesn't exist"));
}

#[test]
fn exact_replies_resp2_and_resp3() {
    let s = Server::start();
    let mut c = s.raw();
    assert_eq!(c.cmd(&["JSON.SET", "k", "$", r#"{"a":1,"b":[1,2],"c":{"d":true},"f":1.5}"#]), "+OK\r\n");
    // RESP2.
    assert_eq!(c.cmd(&["JSON.GET", "k", "$.a"]), "$3\r\n[1]\r\n");
    assert_eq!(c.cmd(&["JSON.GET", "k", ".c"]), "$10\r\n{\"d\":true}\r\n");
    assert_eq!(c.cmd(&["JSON.GET", "k", ".zz"]), "-ERR Path '$.zz' does not exist\r\n");
    assert_eq!(c.cmd(&["JSON.NUMINCRBY", "k", "$.a", "1"]), "$3\r\n[2]\r\n");
    assert_eq!(c.cmd(&["JSON.NUMINCRBY", "k", ".a", "1"]), "$1\r\n3\r\n");
    assert_eq!(c.cmd(&["JSON.TYPE", "k", "$.a"]), "*1\r\n$7\r\ninteger\r\n");
    assert_eq!(c.cmd(&["JSON.ARRLEN", "k", "$.*"]), "*4\r\n$-1\r\n:2\r\n$-1\r\n$-1\r\n");
    assert_eq!(c.cmd(&["JSON.RESP", "k", ".f"]), "$3\r\n1.5\r\n");
    assert_eq!(c.cmd(&["JSON.MGET", "k", "nope", ".a"]), "*2\r\n$1\r\n3\r\n$-1\r\n");
    assert_eq!(c.cmd(&["JSON.SET", "k", "$.x.y", "1"]), "$-1\r\n");
    // RESP3: JSON.GET still answers bulk text; typed replies become native.
    assert!(c.cmd(&["HELLO", "3"]).starts_with("%7\r\n"));
    assert_eq!(c.cmd(&["JSON.GET", "k", "$.a"]), "$3\r\n[3]\r\n");
    assert_eq!(c.cmd(&["JSON.GET", "k", ".a"]), "$1\r\n3\r\n");
    assert_eq!(c.cmd(&["JSON.NUMINCRBY", "k", "$.a", "1"]), "*1\r\n:4\r\n");
    assert_eq!(c.cmd(&["JSON.NUMINCRBY", "k", ".f", "1"]), "*1\r\n,2.5\r\n");
    assert_eq!(c.cmd(&["JSON.TYPE", "k", ".a"]), "*1\r\n$7\r\ninteger\r\n");
    assert_eq!(c.cmd(&["JSON.ARRLEN", "k", "$.*"]), "*4\r\n_\r\n:2\r\n_\r\n_\r\n");
    assert_eq!(c.cmd(&["JSON.RESP", "k", ".f"]), ",2.5\r\n");
    assert_eq!(c.cmd(&["JSON.GET", "k", "FORMAT", "EXPAND", "$.c"]), "*1\r\n*1\r\n%1\r\n$1\r\nd\r\n#t\r\n");
    assert_eq!(c.cmd(&["JSON.MGET", "k", "nope", ".a"]), "*2\r\n$1\r\n4\r\n_\r\n");
    assert_eq!(c.cmd(&["JSON.SET", "k", "$.x.y", "1"]), "_\r\n");
}

#[tokio::test]
async fn resp3_through_redis_rs() {
    let s = Server::start();
    let client = redis::Client::open(format!("{}?protocol=resp3", s.url())).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    assert_eq!(q::<String>(&mut c, &["JSON.SET", "k", "$", r#"{"n":1,"f":0.5,"s":"x"}"#]).await, "OK");
    assert_eq!(q::<String>(&mut c, &["JSON.GET", "k", "$.s"]).await, "[\"x\"]");
    let v: Value = q(&mut c, &["JSON.NUMINCRBY", "k", "$.*", "1"]).await;
    assert_eq!(v, Value::Array(vec![Value::Int(2), Value::Double(1.5), Value::Nil]));
    let v: Value = q(&mut c, &["JSON.TOGGLE", "k", "$.n"]).await;
    assert_eq!(v, Value::Array(vec![Value::Nil]));
}

#[tokio::test]
async fn mget_and_mset_across_shards() {
    let s = Server::start_with(&["--shards", "4"]);
    let mut c = s.conn().await;
    let keys: Vec<String> = (0..24).map(|i| format!("cart:{i}")).collect();
    let mut args = vec!["JSON.MSET".to_string()];
    for (i, k) in keys.iter().enumerate() {
        args.extend([k.clone(), "$".into(), format!(r#"{{"user":{i},"items":[{i}]}}"#)]);
    }
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_eq!(q::<String>(&mut c, &a).await, "OK");
    let mut mget: Vec<&str> = vec!["JSON.MGET"];
    mget.extend(keys.iter().map(String::as_str));
    mget.push("$.user");
    let got: Vec<Option<String>> = q(&mut c, &mget).await;
    assert_eq!(got, (0..24).map(|i| Some(format!("[{i}]"))).collect::<Vec<_>>());
    // Legacy path: single values; a missing key is nil.
    let mut mget: Vec<&str> = vec!["JSON.MGET", "cart:0", "nobody", "cart:23"];
    mget.push(".items[0]");
    let got: Vec<Option<String>> = q(&mut c, &mget).await;
    assert_eq!(got, vec![Some("0".into()), None, Some("23".into())]);
    // A failing triplet (new key, non-root path) means nothing is written.
    let e = q_err(&mut c, &["JSON.MSET", "cart:0", "$.user", "100", "fresh:1", "$.a", "1"]).await;
    assert!(e.contains("new objects must be created at the root"), "{e}");
    assert_eq!(q::<String>(&mut c, &["JSON.GET", "cart:0", ".user"]).await, "0");
    let e = q_err(&mut c, &["JSON.MSET", "cart:0", "$.user", "100", "cart:1", "$", "{bad"]).await;
    assert!(e.contains("must be a string at line 1 column 2"), "{e}");
    assert_eq!(q::<String>(&mut c, &["JSON.GET", "cart:0", ".user"]).await, "0");
    let e = q_err(&mut c, &["JSON.MSET", "cart:0", "$.user", "100", "cart:1", "$..nope", "1"]).await;
    assert!(e.contains("wrong static path"), "{e}");
    let e = q_err(&mut c, &["JSON.MSET", "cart:0", "$.user", "100", "cart:1", "$.items[5]", "1"]).await;
    assert!(e.contains("index out of bounds"), "{e}");
    assert_eq!(q::<String>(&mut c, &["JSON.GET", "cart:0", ".user"]).await, "0");
    // Updates inside existing documents on several shards.
    assert_eq!(
        q::<String>(&mut c, &["JSON.MSET", "cart:0", "$.user", "100", "cart:5", "$.items[0]", "50", "new:1", "$", "[]"]).await,
        "OK"
    );
    let got: Vec<Option<String>> = q(&mut c, &["JSON.MGET", "cart:0", "cart:5", "new:1", "$"]).await;
    assert_eq!(got, vec![Some(r#"[{"user":100,"items":[0]}]"#.into()), Some(r#"[{"user":5,"items":[50]}]"#.into()), Some("[[]]".into())]);
    assert!(q_err(&mut c, &["JSON.MSET", "a", "$"]).await.contains("wrong number of arguments"));
}

/// Writers JSON.MSET a group of documents spread over every shard to the
/// same version; readers JSON.MGET the group and must never see a mix.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn json_mset_is_atomic_for_concurrent_readers() {
    let s = Server::start_with(&["--shards", "4"]);
    let keys: Vec<String> = (0..12).map(|i| format!("doc:{i}")).collect();
    let mset = |v: i64| {
        let mut cmd = redis::cmd("JSON.MSET");
        for k in &keys {
            cmd.arg(k).arg("$").arg(format!(r#"{{"v":{v}}}"#));
        }
        cmd
    };
    {
        let mut c = s.conn().await;
        let _: () = mset(0).query_async(&mut c).await.unwrap();
    }
    let mut tasks = Vec::new();
    for w in 0..3i64 {
        let client = s.client();
        let cmds: Vec<redis::Cmd> = (0..200).map(|r| mset(w * 1000 + r)).collect();
        tasks.push(tokio::spawn(async move {
            let mut c = client.get_multiplexed_async_connection().await.unwrap();
            for cmd in cmds {
                let _: () = cmd.query_async(&mut c).await.unwrap();
            }
            0usize
        }));
    }
    for _ in 0..3 {
        let (client, keys) = (s.client(), keys.clone());
        tasks.push(tokio::spawn(async move {
            let mut c = client.get_multiplexed_async_connection().await.unwrap();
            let mut torn = 0;
            for _ in 0..200 {
                let mut cmd = redis::cmd("JSON.MGET");
                cmd.arg(&keys).arg(".v");
                let vals: Vec<String> = cmd.query_async(&mut c).await.unwrap();
                if vals.iter().any(|v| *v != vals[0]) {
                    torn += 1;
                }
            }
            torn
        }));
    }
    let mut torn = 0;
    for t in tasks {
        torn += t.await.unwrap();
    }
    assert_eq!(torn, 0, "a reader saw a half-applied JSON.MSET");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_numincrby_counts_exactly() {
    let s = Server::start_with(&["--shards", "2"]);
    {
        let mut c = s.conn().await;
        assert_eq!(q::<String>(&mut c, &["JSON.SET", "stats", "$", r#"{"views":0,"revenue":0.0,"by":{"a":0,"b":0}}"#]).await, "OK");
    }
    const CLIENTS: i64 = 20;
    const OPS: i64 = 100;
    let mut tasks = Vec::new();
    for i in 0..CLIENTS {
        let client = s.client();
        tasks.push(tokio::spawn(async move {
            let mut c = client.get_multiplexed_async_connection().await.unwrap();
            for _ in 0..OPS {
                let _: String = q(&mut c, &["JSON.NUMINCRBY", "stats", "$.views", "1"]).await;
                let _: String = q(&mut c, &["JSON.NUMINCRBY", "stats", "$.revenue", "0.5"]).await;
                let path = if i % 2 == 0 { "$.by.a" } else { "$.by.b" };
                let _: String = q(&mut c, &["JSON.NUMINCRBY", "stats", path, "2"]).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut c = s.conn().await;
    let total = CLIENTS * OPS;
    assert_eq!(q::<String>(&mut c, &["JSON.GET", "stats", ".views"]).await, total.to_string());
    assert_eq!(q::<String>(&mut c, &["JSON.GET", "stats", ".revenue"]).await, format!("{:?}", total as f64 * 0.5));
    assert_eq!(q::<String>(&mut c, &["JSON.GET", "stats", "$.by.*"]).await, format!("[{},{}]", total, total));
}

#[test]
fn json_keys_move_with_rename_across_shards() {
    let s = Server::start_with(&["--shards", "4"]);
    let mut c = s.raw();
    assert_eq!(c.cmd(&["JSON.SET", "{a}src", "$", r#"{"x":[1,2]}"#]), "+OK\r\n");
    for i in 0..8 {
        let dst = format!("dst{i}");
        let src = if i == 0 { "{a}src".to_string() } else { format!("dst{}", i - 1) };
        assert_eq!(c.cmd(&["RENAME", &src, &dst]), "+OK\r\n");
    }
    assert_eq!(c.cmd(&["JSON.GET", "dst7", "$.x[1]"]), "$3\r\n[2]\r\n");
    assert_eq!(c.cmd(&["TYPE", "dst7"]), "+ReJSON-RL\r\n");
}

/// DUMP/RESTORE and COPY carry JSON documents intact, with their TTL.
#[test]
fn json_keys_survive_dump_restore_and_copy() {
    let s = Server::start_with(&["--shards", "4"]);
    let mut c = s.sync_conn();
    let doc = r#"{"id":1,"items":[{"sku":"a","quantity":1,"price":9.5}],"total":9.5,"big":12345678901}"#;
    let _: () = redis::cmd("JSON.SET").arg("order:1").arg("$").arg(doc).query(&mut c).unwrap();
    let _: () = redis::cmd("EXPIRE").arg("order:1").arg(1000).query(&mut c).unwrap();
    let payload: Vec<u8> = redis::cmd("DUMP").arg("order:1").query(&mut c).unwrap();
    let _: () = redis::cmd("RESTORE").arg("order:2").arg(0).arg(&payload).query(&mut c).unwrap();
    let _: bool = redis::cmd("COPY").arg("order:1").arg("order:3").query(&mut c).unwrap();
    let original: String = redis::cmd("JSON.GET").arg("order:1").query(&mut c).unwrap();
    for k in ["order:2", "order:3"] {
        let got: String = redis::cmd("JSON.GET").arg(k).query(&mut c).unwrap();
        assert_eq!(got, original, "{k}");
        let t: String = redis::cmd("TYPE").arg(k).query(&mut c).unwrap();
        assert_eq!(t, "ReJSON-RL");
    }
    let ttl: i64 = redis::cmd("TTL").arg("order:3").query(&mut c).unwrap();
    assert!(ttl > 990, "COPY keeps the TTL: {ttl}");
    // Changing the copy leaves the original alone.
    let _: () = redis::cmd("JSON.SET").arg("order:3").arg("$.total").arg(1).query(&mut c).unwrap();
    let t1: String = redis::cmd("JSON.GET").arg("order:1").arg("$.total").query(&mut c).unwrap();
    assert_eq!(t1, "[9.5]");
}
