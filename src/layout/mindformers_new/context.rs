//! The resume context of the new format (`mindformers-new-format.md` §3.1, §7.2, §7.4, §8):
//! `common.json` loaded as MindFormers' `CommonInfo`, then the step, epoch and data skip with
//! Python's `float` (f64) arithmetic and truncation — not the legacy path's float32 — and
//! Python's exceptions, word for word, for every value that breaks them.

use crate::py::int::PyInt;
use crate::py::json::{self, PyValue};
use crate::py::{py_repr, PyException};

/// `CommonInfo`'s fields, in its order.
pub const FIELDS: [&str; 7] = [
    "epoch_num",
    "step_num",
    "global_step",
    "loss_scale",
    "global_batch_size",
    "consumed_samples",
    "ckpt_status",
];

/// `common.json` as `CommonInfo(**data)` holds it: each field's Python value (`None` when
/// the key is absent).
#[derive(Clone, Debug, PartialEq)]
pub struct CommonInfo {
    values: Vec<PyValue>,
}

impl CommonInfo {
    /// The value of field `name` (one of [`FIELDS`]).
    pub fn get(&self, name: &str) -> &PyValue {
        let i = FIELDS.iter().position(|f| *f == name).unwrap_or(0);
        &self.values[i]
    }
}

/// `CommonInfo.load_common`: `json.load` (`ValueError: JSON format failed: …` for bad JSON, the
/// bare `UnicodeDecodeError` for bad bytes), `data.pop("data_plan_state", None)`, then
/// `CommonInfo(**data)`.
pub fn load_common(bytes: &[u8]) -> Result<CommonInfo, PyException> {
    let v = json::load(bytes).map_err(|e| match e.class {
        "JSONDecodeError" => {
            PyException::new("ValueError", format!("JSON format failed: {}", e.message))
        }
        class => PyException::new(class, e.message),
    })?;
    let items = match v {
        PyValue::Dict(items) => items,
        PyValue::List(_) => {
            return Err(PyException::new(
                "TypeError",
                "pop expected at most 1 argument, got 2",
            ))
        }
        other => {
            return Err(PyException::new(
                "AttributeError",
                format!("'{}' object has no attribute 'pop'", other.type_name()),
            ))
        }
    };
    let mut values = vec![PyValue::None; FIELDS.len()];
    for (k, v) in items {
        if k == "data_plan_state" {
            continue;
        }
        match FIELDS.iter().position(|f| *f == k) {
            Some(i) => values[i] = v,
            None => {
                return Err(PyException::new(
                    "TypeError",
                    format!("CommonInfo.__init__() got an unexpected keyword argument '{k}'"),
                ))
            }
        }
    }
    Ok(CommonInfo { values })
}

/// The resumed run's settings that the context depends on.
#[derive(Clone, Debug, PartialEq)]
pub struct RunArgs {
    /// The new run's global batch size.
    pub gbs_new: i64,
    pub sink_mode: bool,
    pub dataset_size: i64,
    /// `checkpoint.no_load_optim` (the flag that really decides "resume", §1.4).
    pub no_load_optim: bool,
    pub resume_training: bool,
    pub ignore_data_skip: bool,
    pub data_skip_steps: Option<i64>,
}

/// What the resumed run starts from.
#[derive(Clone, Debug, PartialEq)]
pub struct Resumed {
    pub initial_step: PyInt,
    pub initial_epoch: PyInt,
    /// `dataset.set_init_step(n)`: batches skipped (of the new batch size), when any.
    pub skip: Option<PyInt>,
    /// `common.json`'s loss scale when it is a number (restored into the loss scaler).
    pub loss_scale: Option<f64>,
}

fn type_error(message: String) -> PyException {
    PyException::new("TypeError", message)
}

/// `a / b` for `common.json`'s value `a` and an `int` `b` (true division).
fn div(a: &PyValue, b: i64) -> Result<f64, PyException> {
    let x = match a {
        PyValue::Int(i) => i.to_f64().ok_or_else(|| {
            PyException::new(
                "OverflowError",
                "integer division result too large for a float",
            )
        })?,
        PyValue::Bool(v) => f64::from(u8::from(*v)),
        PyValue::Float(f) => *f,
        other => {
            return Err(type_error(format!(
                "unsupported operand type(s) for /: '{}' and 'int'",
                other.type_name()
            )))
        }
    };
    if b == 0 {
        let m = match a {
            PyValue::Float(_) => "float division by zero",
            _ => "division by zero",
        };
        return Err(PyException::new("ZeroDivisionError", m));
    }
    Ok(x / b as f64)
}

/// `a * f` for `common.json`'s value `a` and a `float` `f`.
fn mul(a: &PyValue, f: f64) -> Result<f64, PyException> {
    let x = match a {
        PyValue::Int(i) => i.to_f64().ok_or_else(|| {
            PyException::new("OverflowError", "int too large to convert to float")
        })?,
        PyValue::Bool(v) => f64::from(u8::from(*v)),
        PyValue::Float(x) => *x,
        PyValue::Str(_) | PyValue::List(_) => {
            return Err(type_error(
                "can't multiply sequence by non-int of type 'float'".into(),
            ))
        }
        other => {
            return Err(type_error(format!(
                "unsupported operand type(s) for *: '{}' and 'float'",
                other.type_name()
            )))
        }
    };
    Ok(x * f)
}

/// `int(x)` of a float.
fn trunc(x: f64) -> Result<PyInt, PyException> {
    PyInt::from_f64_trunc(x).map_err(|m| {
        let class = if x.is_nan() {
            "ValueError"
        } else {
            "OverflowError"
        };
        PyException::new(class, m)
    })
}

/// `int(v)` of `common.json`'s value `v`.
fn int_of(v: &PyValue) -> Result<PyInt, PyException> {
    match v {
        PyValue::Int(i) => Ok(i.clone()),
        PyValue::Bool(b) => Ok(PyInt::from_i64(i64::from(*b))),
        PyValue::Float(f) => trunc(*f),
        PyValue::Str(s) => super::tracker::py_int(s).ok_or_else(|| {
            PyException::new(
                "ValueError",
                format!("invalid literal for int() with base 10: {}", py_repr(s)),
            )
        }),
        other => Err(type_error(format!(
            "int() argument must be a string, a bytes-like object or a real number, not '{}'",
            other.type_name()
        ))),
    }
}

/// The context of a resume from folder `dir` whose `common.json` holds `common` (`None`: no
/// such file), under `a` (§7.2 and §7.4, in MindFormers' order of evaluation).
pub fn resume(dir: &str, common: Option<&[u8]>, a: &RunArgs) -> Result<Resumed, PyException> {
    let zero = PyInt::from_i64(0);
    let (initial_step, initial_epoch, loss_scale) = match a.no_load_optim || dir.is_empty() {
        true => (zero.clone(), zero, None),
        false => {
            let bytes = common.ok_or_else(|| {
                PyException::new(
                    "FileNotFoundError",
                    format!("No common.json found in directory '{dir}'."),
                )
            })?;
            let ci = load_common(bytes)?;
            let scale = div(ci.get("global_batch_size"), a.gbs_new)?;
            let step = trunc(mul(ci.get("step_num"), scale)?)?;
            let epoch = match a.sink_mode {
                true => trunc(mul(ci.get("epoch_num"), scale)?)?,
                false => {
                    let e = int_of(ci.get("epoch_num"))?;
                    if a.dataset_size == 0 {
                        return Err(PyException::new(
                            "ZeroDivisionError",
                            "integer modulo by zero",
                        ));
                    }
                    match step.divisible_by(a.dataset_size) {
                        true => e,
                        false => e.minus_one(),
                    }
                }
            };
            let loss = match ci.get("loss_scale") {
                PyValue::Float(f) => Some(*f),
                PyValue::Int(i) => i.to_f64(),
                _ => None,
            };
            (step, epoch, loss)
        }
    };
    // §7.4: data_skip_steps applies even without a resume and is never rescaled
    let skip_steps = a.data_skip_steps.filter(|n| *n != 0);
    let skip = match (skip_steps.is_some() || a.resume_training || !a.no_load_optim)
        && !a.ignore_data_skip
    {
        false => None,
        true => {
            let n = skip_steps.map_or_else(|| initial_step.clone(), PyInt::from_i64);
            (n > PyInt::from_i64(0)).then_some(n)
        }
    };
    Ok(Resumed {
        initial_step,
        initial_epoch,
        skip,
        loss_scale,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_and_odd_values_follow_python() {
        let args = RunArgs {
            gbs_new: 8,
            sink_mode: true,
            dataset_size: 1,
            no_load_optim: false,
            resume_training: true,
            ignore_data_skip: false,
            data_skip_steps: None,
        };
        let r = |json: &str| resume("d", Some(json.as_bytes()), &args);
        let ok = r(r#"{"step_num": 1e300, "epoch_num": 1, "global_batch_size": 8}"#).unwrap();
        assert_eq!(ok.initial_step.to_string().len(), 301);
        let e = r(r#"{"step_num": Infinity, "epoch_num": 1, "global_batch_size": 8}"#).unwrap_err();
        assert_eq!(
            (e.class.as_str(), e.message.as_str()),
            ("OverflowError", "cannot convert float infinity to integer")
        );
        let e = r(r#"{"step_num": NaN, "epoch_num": 1, "global_batch_size": 8}"#).unwrap_err();
        assert_eq!(e.class, "ValueError");
        let e = r(r#"{"step_num": 1, "epoch_num": 1, "global_batch_size": "8"}"#).unwrap_err();
        assert_eq!(
            e.message,
            "unsupported operand type(s) for /: 'str' and 'int'"
        );
        let e = r(r#"{"step_num": {}, "epoch_num": 1, "global_batch_size": 8}"#).unwrap_err();
        assert_eq!(
            e.message,
            "unsupported operand type(s) for *: 'dict' and 'float'"
        );
        let e = r("null").unwrap_err();
        assert_eq!(e.message, "'NoneType' object has no attribute 'pop'");
        let e = r("7").unwrap_err();
        assert_eq!(e.message, "'int' object has no attribute 'pop'");
        let non_sink = RunArgs {
            sink_mode: false,
            dataset_size: 3,
            ..args.clone()
        };
        let e = resume(
            "d",
            Some(br#"{"step_num": 1, "epoch_num": "ten", "global_batch_size": 8}"#),
            &non_sink,
        )
        .unwrap_err();
        assert_eq!(e.message, "invalid literal for int() with base 10: 'ten'");
        let big = resume("d", Some(br#"{"step_num": 1, "epoch_num": 100000000000000000000000000000000000000000, "global_batch_size": 8}"#), &non_sink).unwrap();
        assert_eq!(
            big.initial_epoch.to_string(),
            "99999999999999999999999999999999999999999"
        );
    }
}
