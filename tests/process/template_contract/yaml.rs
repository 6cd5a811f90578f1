//! Reads a CloudFormation/SAM template into JSON with every intrinsic in its long form.
//!
//! Templates are written with the short tags (`!Ref X`, `!GetAtt X.Arn`, `!Sub "..."`); a
//! YAML parser keeps them as tagged values. Normalising them to the JSON form CloudFormation
//! itself uses (`{"Ref": X}`, `{"Fn::GetAtt": [X, "Arn"]}`) lets the checks compare one shape
//! whichever way the template spells an intrinsic.

use serde_json::{Map, Value, json};
use serde_norway::Value as Yaml;

pub fn parse(text: &str) -> Result<Value, String> {
    let yaml: Yaml = serde_norway::from_str(text).map_err(|e| format!("YAML: {e}"))?;
    to_json(yaml)
}

fn to_json(value: Yaml) -> Result<Value, String> {
    Ok(match value {
        Yaml::Null => Value::Null,
        Yaml::Bool(b) => Value::Bool(b),
        Yaml::Number(n) => {
            if let Some(i) = n.as_i64() {
                json!(i)
            } else if let Some(u) = n.as_u64() {
                json!(u)
            } else {
                json!(n.as_f64())
            }
        }
        Yaml::String(s) => Value::String(s),
        Yaml::Sequence(items) => {
            Value::Array(items.into_iter().map(to_json).collect::<Result<_, _>>()?)
        }
        Yaml::Mapping(entries) => {
            let mut map = Map::new();
            for (k, v) in entries {
                let key = match k {
                    Yaml::String(s) => s,
                    Yaml::Number(n) => n.to_string(),
                    Yaml::Bool(b) => b.to_string(),
                    other => return Err(format!("mapping key {other:?} is not a scalar")),
                };
                map.insert(key, to_json(v)?);
            }
            Value::Object(map)
        }
        Yaml::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            intrinsic(tag.trim_start_matches('!'), to_json(tagged.value)?)
        }
    })
}

/// The long form of a short-form intrinsic.
fn intrinsic(name: &str, arg: Value) -> Value {
    match name {
        "Ref" => json!({ "Ref": arg }),
        "Condition" => json!({ "Condition": arg }),
        // `!GetAtt Res.Attr` is a string; the long form is `[Res, Attr]` (attributes such as
        // `Endpoint.Address` keep their own dots, so split at the first one only).
        "GetAtt" => match arg {
            Value::String(s) => match s.split_once('.') {
                Some((res, attr)) => json!({ "Fn::GetAtt": [res, attr] }),
                None => json!({ "Fn::GetAtt": s }),
            },
            other => json!({ "Fn::GetAtt": other }),
        },
        other => {
            let mut map = Map::new();
            map.insert(format!("Fn::{other}"), arg);
            Value::Object(map)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_forms_become_long_forms() {
        let v = parse(
            "a: !Ref X\nb: !GetAtt T.StreamArn\nc: !Sub \"${T.Arn}/index/i\"\n\
             d: !Not [!Equals [!Ref P, \"\"]]\ne: { Fn::GetAtt: [T, Arn] }\n",
        )
        .unwrap();
        assert_eq!(v["a"], json!({"Ref": "X"}));
        assert_eq!(v["b"], json!({"Fn::GetAtt": ["T", "StreamArn"]}));
        assert_eq!(v["c"], json!({"Fn::Sub": "${T.Arn}/index/i"}));
        assert_eq!(
            v["d"],
            json!({"Fn::Not": [{"Fn::Equals": [{"Ref": "P"}, ""]}]})
        );
        assert_eq!(v["e"], json!({"Fn::GetAtt": ["T", "Arn"]}));
    }
}
