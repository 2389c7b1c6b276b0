//! Figure JSON rounded to what the eye can see: every float written into a
//! figure keeps [`SIGNIFICANT_DIGITS`] significant digits, so a notebook
//! does not store `0.30000001192092896` where a chart shows `0.3`.
//!
//! One rule for every figure, applied by [`crate::viz::Figure::to_json`]:
//!
//! - a float that is a whole number below 2⁵³ (an epoch, a count, a pixel
//!   size) is kept exactly;
//! - any other finite float is rounded to 5 significant digits (relative
//!   error ≤ 5·10⁻⁵: a thousandth of a pixel on a 1000-pixel axis, and the
//!   hover still shows `0.98765`);
//! - integers, strings (image data URIs, labels), `null` are untouched.
//!
//! ```
//! use nnlab::viz::rounding::round_floats;
//! let mut v = serde_json::json!({"y": [0.123456789, 2.0, 60000.0, 1.23456e-9], "n": 3});
//! round_floats(&mut v, 5);
//! assert_eq!(v.to_string(), r#"{"n":3,"y":[0.12346,2.0,60000.0,1.2346e-9]}"#);
//! ```

use serde_json::Value;

/// Significant digits every figure's floats keep.
pub const SIGNIFICANT_DIGITS: usize = 5;

/// `x` rounded to `digits` significant digits (whole numbers below 2⁵³ and
/// non-finite values unchanged). The result is the double closest to the
/// short decimal, so JSON writes it with at most `digits` digits.
pub fn round_significant(x: f64, digits: usize) -> f64 {
    if !x.is_finite() || x == 0.0 || (x.fract() == 0.0 && x.abs() < 9.007_199_254_740_992e15) {
        return x;
    }
    let digits = digits.max(1);
    format!("{:.*e}", digits - 1, x).parse().unwrap_or(x)
}

/// Rounds every float inside `value` in place (see the module doc).
pub fn round_floats(value: &mut Value, digits: usize) {
    match value {
        Value::Number(n) if n.is_f64() => {
            if let Some(x) = n.as_f64() {
                if let Some(r) = serde_json::Number::from_f64(round_significant(x, digits)) {
                    *n = r;
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| round_floats(v, digits)),
        Value::Object(map) => map.values_mut().for_each(|v| round_floats(v, digits)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn significant_digits_not_decimals() {
        assert_eq!(round_significant(0.30000001192092896, 5), 0.3);
        assert_eq!(round_significant(-1.234567, 5), -1.2346);
        assert_eq!(round_significant(1.234567e-7, 5), 1.2346e-7);
        assert_eq!(round_significant(98765.4321, 5), 98765.0);
        assert_eq!(round_significant(123456.7, 5), 123460.0);
        // Whole numbers stay exact, whatever their size.
        assert_eq!(round_significant(1234567.0, 5), 1234567.0);
        assert_eq!(round_significant(0.0, 5), 0.0);
        assert!(round_significant(f64::NAN, 5).is_nan());
        assert_eq!(round_significant(f64::INFINITY, 5), f64::INFINITY);
        // Within half a unit of the 5th digit.
        for &x in &[0.987654321, 3.1234567, -2.718_456e-3, 42.424242] {
            let r = round_significant(x, 5);
            assert!(((r - x) / x).abs() <= 5e-5, "{x} → {r}");
        }
        // The JSON of a rounded float is short.
        let v = serde_json::json!(round_significant(0.1f32 as f64, 5));
        assert_eq!(v.to_string(), "0.1");
    }

    #[test]
    fn nested_values_rounded_ints_and_strings_kept() {
        let mut v = serde_json::json!({
            "data": [{"x": [1, 2, 3], "y": [0.333333333, null], "name": "0.123456789"}],
            "layout": {"xaxis": {"range": [-0.5, 12.3456789]}, "height": 440}
        });
        round_floats(&mut v, 4);
        assert_eq!(
            v,
            serde_json::json!({
                "data": [{"x": [1, 2, 3], "y": [0.3333, null], "name": "0.123456789"}],
                "layout": {"xaxis": {"range": [-0.5, 12.35]}, "height": 440}
            })
        );
    }
}
