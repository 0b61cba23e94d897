//! Unit tests of path parsing and evaluation.
use super::*;

fn doc() -> Json {
    Json::parse(
        br#"{"store":{"book":[{"title":"A","price":8.95,"tag":"x"},{"title":"B","price":12.99,"tag":"y"},{"title":"C","price":8,"tag":"x","isbn":"1"}],"bicycle":{"color":"red","price":19.95}},"a":[1,2,3,4,5]}"#,
    )
    .unwrap()
}

fn sel(path: &str) -> String {
    let d = doc();
    let p = JsonPath::parse(path.as_bytes()).unwrap();
    let v = p.select(&d);
    let mut out = Vec::new();
    super::super::value::write_array(v.into_iter(), &mut out, &super::super::value::Format::COMPACT);
    String::from_utf8(out).unwrap()
}

#[test]
fn legacy_translation() {
    for (arg, norm, legacy) in [
        ("$", "$", false),
        (".", "$", true),
        (".a", "$.a", true),
        ("a", "$.a", true),
        ("a[0]", "$.a[0]", true),
        ("[0]", "$[0]", true),
        ("$.a", "$.a", false),
    ] {
        let p = JsonPath::parse(arg.as_bytes()).unwrap();
        assert_eq!((p.normalized.as_str(), p.legacy), (norm, legacy), "{arg}");
    }
}

#[test]
fn selection() {
    assert_eq!(sel("$.a[1:3]"), "[2,3]");
    assert_eq!(sel("$.a[::-2]"), "[5,3,1]");
    assert_eq!(sel("$.a[-2:]"), "[4,5]");
    assert_eq!(sel("$.a[0,-1]"), "[1,5]");
    assert_eq!(sel("$..price"), "[8.95,12.99,8,19.95]");
    assert_eq!(sel("$.store.book[?(@.price < 10 && @.tag == \"x\")].title"), "[\"A\",\"C\"]");
    assert_eq!(sel("$.store.book[?@.isbn].title"), "[\"C\"]");
    assert_eq!(sel("$.store.book[?(!@.isbn)].title"), "[\"A\",\"B\"]");
    assert_eq!(sel("$.store.book[?(@.title =~ \"^[AB]$\")].price"), "[8.95,12.99]");
    assert_eq!(sel("$.store.book[?(@.price == 8)].title"), "[\"C\"]");
    assert_eq!(sel("$.store.book[?(@.price > $.store.bicycle.price || @.tag == 'y')].title"), "[\"B\"]");
}

#[test]
fn syntax_errors_carry_positions() {
    assert_eq!(JsonPath::parse(b"$.a[").unwrap_err().pos, 4);
    assert_eq!(
        JsonPath::parse(b"$a").unwrap_err().to_string(),
        "Error occurred on position 1, expected one of the following: '.', '..', '['"
    );
    assert!(JsonPath::parse(b"$..").is_err());
    assert!(JsonPath::parse(b"$[?(@.a ==)]").is_err());
    assert!(JsonPath::parse(b"$['a'").is_err());
    let deep = format!("$[?{}@.a{}]", "(".repeat(200), ")".repeat(200));
    assert!(JsonPath::parse(deep.as_bytes()).is_err());
    assert!(JsonPath::parse(b"").is_err());
}
