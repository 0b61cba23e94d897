//! `bit`: LuaBitOp's 32-bit operations (tobit, tohex, bnot, band, bor, bxor,
//! lshift, rshift, arshift, rol, ror, bswap). Numbers are normalised the way
//! LuaBitOp does: rounded to an integer and taken modulo 2^32, results are
//! signed 32-bit.

use mlua::{Lua, MultiValue, Table, Value};

use super::{bad_arg, to_number};

/// LuaBitOp's normalisation: round to nearest (ties to even, as its
/// 2^52+2^51 addition trick does), then keep the low 32 bits.
pub fn tobit(n: f64) -> i32 {
    if !n.is_finite() {
        return 0;
    }
    let r = n.round_ties_even();
    let m = r.rem_euclid(4294967296.0);
    (m as u64 as u32) as i32
}

fn arg(args: &MultiValue, i: usize, fname: &str) -> mlua::Result<i32> {
    let v = args.get(i).cloned().unwrap_or(Value::Nil);
    to_number(&v).map(tobit).ok_or_else(|| bad_arg(i + 1, fname, "number", &v))
}

pub fn open(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set("tobit", lua.create_function(|_, a: MultiValue| Ok(arg(&a, 0, "tobit")? as f64))?)?;
    t.raw_set("bnot", lua.create_function(|_, a: MultiValue| Ok(!arg(&a, 0, "bnot")? as f64))?)?;
    fn fold(name: &'static str, lua: &Lua, op: fn(i32, i32) -> i32) -> mlua::Result<mlua::Function> {
        lua.create_function(move |_, a: MultiValue| {
            let mut acc = arg(&a, 0, name)?;
            for i in 1..a.len() {
                acc = op(acc, arg(&a, i, name)?);
            }
            Ok(acc as f64)
        })
    }
    t.raw_set("band", fold("band", lua, |x, y| x & y)?)?;
    t.raw_set("bor", fold("bor", lua, |x, y| x | y)?)?;
    t.raw_set("bxor", fold("bxor", lua, |x, y| x ^ y)?)?;
    fn shift(name: &'static str, lua: &Lua, op: fn(u32, u32) -> u32) -> mlua::Result<mlua::Function> {
        lua.create_function(move |_, a: MultiValue| {
            let x = arg(&a, 0, name)? as u32;
            let n = (arg(&a, 1, name)? as u32) & 31;
            Ok(op(x, n) as i32 as f64)
        })
    }
    t.raw_set("lshift", shift("lshift", lua, |x, n| x << n)?)?;
    t.raw_set("rshift", shift("rshift", lua, |x, n| x >> n)?)?;
    t.raw_set("arshift", shift("arshift", lua, |x, n| ((x as i32) >> n) as u32)?)?;
    t.raw_set("rol", shift("rol", lua, |x, n| x.rotate_left(n))?)?;
    t.raw_set("ror", shift("ror", lua, |x, n| x.rotate_right(n))?)?;
    t.raw_set("bswap", lua.create_function(|_, a: MultiValue| Ok((arg(&a, 0, "bswap")? as u32).swap_bytes() as i32 as f64))?)?;
    t.raw_set(
        "tohex",
        lua.create_function(|_, a: MultiValue| {
            let x = arg(&a, 0, "tohex")? as u32;
            let mut n = if a.len() > 1 && !a[1].is_nil() { arg(&a, 1, "tohex")? } else { 8 };
            let upper = n < 0;
            if upper {
                n = -n;
            }
            let n = n.clamp(1, 8) as usize;
            let s = if upper { format!("{x:08X}") } else { format!("{x:08x}") };
            Ok(s[8 - n..].to_string())
        })?,
    )?;
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(lua: &Lua, code: &str) -> Value {
        lua.load(code).eval().unwrap()
    }

    #[test]
    fn operations() {
        let lua = Lua::new();
        lua.globals().set("bit", open(&lua).unwrap()).unwrap();
        let cases: &[(&str, f64)] = &[
            ("bit.tobit(0xffffffff)", -1.0),
            ("bit.tobit(0xffffffff + 1)", 0.0),
            ("bit.tobit(2^40 + 1234)", 1234.0),
            ("bit.bnot(0)", -1.0),
            ("bit.band(0x12345678, 0xff)", 0x78 as f64),
            ("bit.bor(1, 2, 4)", 7.0),
            ("bit.bxor(5, 3)", 6.0),
            ("bit.lshift(1, 31)", -2147483648.0),
            ("bit.lshift(1, 33)", 2.0),
            ("bit.rshift(-1, 28)", 15.0),
            ("bit.arshift(-256, 4)", -16.0),
            ("bit.rol(0x12345678, 12)", 0x45678123 as f64),
            ("bit.ror(0x12345678, 12)", 0x67812345 as f64),
            ("bit.bswap(0x12345678)", 0x78563412 as f64),
        ];
        for (code, want) in cases {
            let got = eval(&lua, &format!("return {code}"));
            let got = match got {
                Value::Integer(i) => i as f64,
                Value::Number(n) => n,
                other => panic!("{code}: {other:?}"),
            };
            assert_eq!(got, *want, "{code}");
        }
        let hex: String = lua.load("return bit.tohex(1) .. ' ' .. bit.tohex(-1, -4) .. ' ' .. bit.tohex(0x1234, 2)").eval().unwrap();
        assert_eq!(hex, "00000001 FFFF 34");
        assert!(lua.load("return bit.band('x')").exec().is_err());
    }
}
