//! Strict JSON for the files people write by hand (model configs) and the
//! metadata nnlab reads back (checkpoints): RFC 8259 leaves duplicate keys
//! undefined and `serde_json` keeps the last one silently; here an object
//! that names a key twice is an error naming the key, at any depth.
//!
//! ```
//! let v = nnlab::json::parse(r#"{"a": [1, {"b": 2}]}"#).unwrap();
//! assert_eq!(v["a"][1]["b"], 2);
//! let e = nnlab::json::parse(r#"{"layers": [], "layers": [1]}"#).unwrap_err().to_string();
//! assert!(e.contains("duplicate key `layers`"), "{e}");
//! ```

use serde::de::{Deserialize, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Parses `text` as JSON, refusing duplicate keys (see the module doc).
pub fn parse(text: &str) -> serde_json::Result<Value> {
    serde_json::from_str::<Strict>(text).map(|s| s.0)
}

/// The same for bytes.
pub fn parse_slice(bytes: &[u8]) -> serde_json::Result<Value> {
    serde_json::from_slice::<Strict>(bytes).map(|s| s.0)
}

/// A [`Value`] whose objects had no duplicate key.
struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Strict, D::Error> {
        d.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Strict;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Strict, E> {
        Ok(Strict(Value::Bool(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Strict, E> {
        Ok(Strict(Value::Number(v.into())))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Strict, E> {
        Ok(Strict(Value::Number(v.into())))
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Strict, E> {
        Number::from_f64(v)
            .map(|n| Strict(Value::Number(n)))
            .ok_or_else(|| E::custom(format!("number {v} is not finite")))
    }
    fn visit_str<E>(self, v: &str) -> Result<Strict, E> {
        Ok(Strict(Value::String(v.to_string())))
    }
    fn visit_string<E>(self, v: String) -> Result<Strict, E> {
        Ok(Strict(Value::String(v)))
    }
    fn visit_unit<E>(self) -> Result<Strict, E> {
        Ok(Strict(Value::Null))
    }
    fn visit_none<E>(self) -> Result<Strict, E> {
        Ok(Strict(Value::Null))
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Strict, D::Error> {
        Strict::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Strict, A::Error> {
        let mut out = Vec::new();
        while let Some(Strict(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Strict(Value::Array(out)))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Strict, A::Error> {
        let mut out = Map::new();
        while let Some(k) = map.next_key::<String>()? {
            if out.contains_key(&k) {
                return Err(A::Error::custom(format!(
                    "duplicate key `{k}`, expected each key once"
                )));
            }
            let Strict(v) = map.next_value()?;
            out.insert(k, v);
        }
        Ok(Strict(Value::Object(out)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 17: duplicate keys were accepted silently (the last one won).
    #[test]
    fn duplicate_keys_at_any_depth_are_errors() -> crate::TestResult {
        let e = parse(r#"{"a": {"b": 1, "b": 2}}"#).unwrap_err().to_string();
        assert!(
            e.contains("duplicate key `b`") && e.contains("line 1"),
            "{e}"
        );
        let e = parse(r#"[{"x": 1}, {"y": 1, "y": 1}]"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("duplicate key `y`"), "{e}");
        let v =
            parse(r#"{"n": 18446744073709551615, "f": 1.5, "s": "é", "z": null, "t": [true]}"#)?;
        let plain: Value = serde_json::from_str(
            r#"{"n": 18446744073709551615, "f": 1.5, "s": "é", "z": null, "t": [true]}"#,
        )?;
        assert_eq!(v, plain);
        assert!(parse_slice(b"{\"a\":1,\"a\":1}").is_err());
        // deep nesting is serde_json's recursion limit, an error, not a stack overflow
        let deep = "[".repeat(100_000);
        assert!(parse(&deep).is_err());
        Ok(())
    }
}
