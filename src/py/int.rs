//! Arbitrary-size integers with Python's `int` semantics for the few operations the resolver
//! needs: parse decimal digits (ASCII or any Unicode `Nd` digit, as `int()` does), compare, and
//! print with `str()`. MindFormers never limits the size of the numbers in file names or
//! `meta.json`, so neither do we: a 30-digit epoch must compare and print exactly as in Python.

use std::cmp::Ordering;
use std::fmt;

/// A Python `int`. Values that fit an `i128` are stored inline (the common case, no
/// allocation); larger ones keep their decimal digits.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct PyInt(Repr);

#[derive(Clone, PartialEq, Eq, Hash, Debug)]
enum Repr {
    Small(i128),
    /// Sign and digits (no leading zeros) of a value outside the `i128` range.
    Big {
        neg: bool,
        digits: String,
    },
}

impl PyInt {
    pub fn from_i64(v: i64) -> Self {
        PyInt(Repr::Small(v as i128))
    }

    /// Parse a run of decimal digits (what `\d+` matched), optionally after a `-`.
    /// Returns the value and whether any digit was outside ASCII (ckptscope warns then).
    pub fn parse_digits(text: &str) -> Option<(Self, bool)> {
        let (neg, body) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        if body.is_empty() {
            return None;
        }
        if body.len() <= 38 && body.bytes().all(|b| b.is_ascii_digit()) {
            let v: i128 = body.parse().ok()?;
            return Some((PyInt(Repr::Small(if neg { -v } else { v })), false));
        }
        let mut out = String::with_capacity(body.len());
        let mut non_ascii = false;
        for c in body.chars() {
            let d = if c.is_ascii_digit() {
                c as u32 - '0' as u32
            } else {
                non_ascii = true;
                unicode_decimal_value(c)?
            };
            if out.is_empty() && d == 0 {
                continue;
            }
            out.push(char::from_digit(d, 10)?);
        }
        if out.len() <= 38 {
            let v: i128 = if out.is_empty() { 0 } else { out.parse().ok()? };
            return Some((PyInt(Repr::Small(if neg { -v } else { v })), non_ascii));
        }
        Some((PyInt(Repr::Big { neg, digits: out }), non_ascii))
    }

    pub fn is_zero(&self) -> bool {
        self.0 == Repr::Small(0)
    }

    /// The value when it fits an `i64`.
    pub fn to_i64(&self) -> Option<i64> {
        match &self.0 {
            Repr::Small(v) => i64::try_from(*v).ok(),
            Repr::Big { .. } => None,
        }
    }

    /// `float(n)`: correctly rounded; `None` where Python raises `OverflowError: int too large
    /// to convert to float`.
    pub fn to_f64(&self) -> Option<f64> {
        let f = match &self.0 {
            Repr::Small(v) => *v as f64,
            Repr::Big { .. } => self.to_string().parse::<f64>().ok()?,
        };
        f.is_finite().then_some(f)
    }

    /// `int(x)` of a float: truncated toward zero, exactly (a float's integer part has finitely
    /// many digits); `Err` with Python's message for an infinity or NaN.
    pub fn from_f64_trunc(x: f64) -> Result<PyInt, &'static str> {
        if x.is_nan() {
            return Err("cannot convert float NaN to integer");
        }
        if x.is_infinite() {
            return Err("cannot convert float infinity to integer");
        }
        let t = x.trunc();
        if t.abs() < 1.0e38 {
            return Ok(PyInt(Repr::Small(t as i128)));
        }
        // the exact decimal expansion of an integral float
        let text = format!("{t:.0}");
        Ok(PyInt::parse_digits(&text).map_or(PyInt(Repr::Small(0)), |(v, _)| v))
    }

    /// `n % d != 0` for a non-zero `d` (whether `d` divides `n`).
    pub fn divisible_by(&self, d: i64) -> bool {
        let d = i128::from(d).abs();
        match &self.0 {
            Repr::Small(v) => v % d == 0,
            Repr::Big { digits, .. } => {
                digits
                    .bytes()
                    .fold(0i128, |r, b| (r * 10 + i128::from(b - b'0')) % d)
                    == 0
            }
        }
    }

    /// `n - 1`.
    pub fn minus_one(&self) -> PyInt {
        match &self.0 {
            Repr::Small(v) => PyInt(Repr::Small(v - 1)),
            // outside the i128 range, one less is still outside it: the decimal string changes
            Repr::Big { .. } => {
                let text = self.to_string();
                let (neg, digits) = match text.strip_prefix('-') {
                    Some(d) => (true, d.to_owned()),
                    None => (false, text),
                };
                let mut b = digits.into_bytes();
                // magnitude - 1 for a positive number, + 1 for a negative one
                let mut i = b.len();
                loop {
                    i -= 1;
                    match (neg, b[i]) {
                        (false, b'0') => b[i] = b'9',
                        (false, c) => {
                            b[i] = c - 1;
                            break;
                        }
                        (true, b'9') => b[i] = b'0',
                        (true, c) => {
                            b[i] = c + 1;
                            break;
                        }
                    }
                    if i == 0 {
                        b.insert(0, b'1');
                        break;
                    }
                }
                let s = String::from_utf8(b).unwrap_or_default();
                let s = if neg { format!("-{s}") } else { s };
                PyInt::parse_digits(&s).map_or(PyInt(Repr::Small(0)), |(v, _)| v)
            }
        }
    }
}

impl fmt::Display for PyInt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::Small(v) => write!(f, "{v}"),
            Repr::Big { neg: true, digits } => write!(f, "-{digits}"),
            Repr::Big { neg: false, digits } => f.write_str(digits),
        }
    }
}

impl Ord for PyInt {
    fn cmp(&self, other: &Self) -> Ordering {
        match (&self.0, &other.0) {
            (Repr::Small(a), Repr::Small(b)) => a.cmp(b),
            // a Big value is outside the i128 range, so its sign decides against a Small one
            (Repr::Big { neg, .. }, Repr::Small(_)) => {
                if *neg {
                    Ordering::Less
                } else {
                    Ordering::Greater
                }
            }
            (Repr::Small(_), Repr::Big { neg, .. }) => {
                if *neg {
                    Ordering::Greater
                } else {
                    Ordering::Less
                }
            }
            (
                Repr::Big {
                    neg: a_neg,
                    digits: a,
                },
                Repr::Big {
                    neg: b_neg,
                    digits: b,
                },
            ) => match (a_neg, b_neg) {
                (false, true) => Ordering::Greater,
                (true, false) => Ordering::Less,
                (neg, _) => {
                    let mag = a.len().cmp(&b.len()).then_with(|| a.cmp(b));
                    if *neg {
                        mag.reverse()
                    } else {
                        mag
                    }
                }
            },
        }
    }
}

impl PartialOrd for PyInt {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The value of a Unicode decimal digit (category `Nd`). Unicode guarantees that decimal digits
/// come in contiguous runs of ten, 0 first, so the value is the distance from the start of the
/// maximal run of `Nd` code points, modulo 10. This avoids shipping a digit table for a case
/// that only hand-renamed files reach.
fn unicode_decimal_value(c: char) -> Option<u32> {
    if !is_unicode_digit(c) {
        return None;
    }
    let mut start = c as u32;
    while start > 0 {
        match char::from_u32(start - 1) {
            Some(p) if is_unicode_digit(p) => start -= 1,
            _ => break,
        }
    }
    Some((c as u32 - start) % 10)
}

/// Python's `\d` for `str` patterns: Unicode category Nd (the `regex` crate's `\d` is the same).
pub fn is_unicode_digit(c: char) -> bool {
    use std::sync::OnceLock;
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    if c.is_ascii_digit() {
        return true;
    }
    if c.is_ascii() {
        return false;
    }
    let re = RE.get_or_init(|| regex::Regex::new(r"^\d$").expect("static regex"));
    let mut buf = [0u8; 4];
    re.is_match(c.encode_utf8(&mut buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_orders_like_python() {
        let p = |s: &str| PyInt::parse_digits(s).unwrap().0;
        assert_eq!(p("020").to_string(), "20");
        assert_eq!(p("0").to_string(), "0");
        assert_eq!(p("-0").to_string(), "0");
        assert!(p("-1") < p("0"));
        assert!(p("-10") < p("-9"));
        assert!(p("99999999999999999999999") > p("9"));
        let big = "1234567890123456789012345678901234567890";
        assert_eq!(p(big).to_string(), big);
        assert!(p(big) > p("99999999999999999999999"));
        assert!(p(&format!("-{big}")) < p("-5"));
        assert_eq!(p(&format!("000{big}")), p(big));
        assert_eq!(p("20"), PyInt::from_i64(20));
    }

    #[test]
    fn unicode_digits_have_their_value() {
        // ARABIC-INDIC DIGIT TWO, and MATHEMATICAL BOLD DIGIT SEVEN (in a run of 50 Nd chars).
        let (v, non_ascii) = PyInt::parse_digits("\u{0662}\u{1D7D5}").unwrap();
        assert!(non_ascii);
        assert_eq!(v.to_string(), "27");
        assert!(PyInt::parse_digits("x").is_none());
    }
}
