//! The JSON Schema (2020-12) of each public event type: the CloudEvents envelope with this
//! service's extensions, and `data` as the type's version-1 snapshot. Generated from the same
//! Rust types that serialize the events, so the documents cannot drift from what is sent;
//! `docs/events/<type>.v1.schema.json` holds them for consumers (a test keeps them equal) and
//! the OpenAPI document lists the `data` schemas among its components.

use super::{EventType, OrderChange, SagaInput, VoucherIssued};
use serde_json::{Value, json};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::Schema;

/// The file name of `kind`'s schema under `docs/events/`.
pub fn file_name(kind: EventType) -> String {
    format!("{}.v1.schema.json", kind.as_str())
}

fn data_schema<T: utoipa::ToSchema>() -> (String, Value) {
    let mut parts: Vec<(String, RefOr<Schema>)> = Vec::new();
    T::schemas(&mut parts);
    parts.push((T::name().into_owned(), T::schema()));
    let defs: serde_json::Map<String, Value> = parts
        .into_iter()
        .map(|(name, schema)| {
            (
                name,
                local_refs(serde_json::to_value(schema).unwrap_or_default()),
            )
        })
        .collect();
    (T::name().into_owned(), Value::Object(defs))
}

/// OpenAPI's `#/components/schemas/X` becomes this document's own `#/$defs/X`.
fn local_refs(mut v: Value) -> Value {
    match &mut v {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                if key == "$ref"
                    && let Some(r) = child.as_str()
                {
                    *child = r.replace("#/components/schemas/", "#/$defs/").into();
                } else {
                    *child = local_refs(child.take());
                }
            }
        }
        Value::Array(items) => {
            for child in items.iter_mut() {
                *child = local_refs(child.take());
            }
        }
        _ => {}
    }
    v
}

/// The schema of one public event type, envelope and `data`.
pub fn event_schema(kind: EventType) -> Value {
    let (data, defs) = match kind {
        EventType::OrderCreated => data_schema::<SagaInput>(),
        EventType::VoucherIssued => data_schema::<VoucherIssued>(),
        _ => data_schema::<OrderChange>(),
    };
    let data_ref = json!({"$ref": format!("#/$defs/{data}")});
    // Each status change's own promise on top of the shared snapshot.
    let (status, required) = match kind {
        EventType::OrderPaymentProcessed => ("PAYMENT_PROCESSED", vec!["paymentId"]),
        EventType::OrderShipped => ("SHIPPED", vec!["trackingNumber"]),
        EventType::OrderCompleted => ("COMPLETED", vec![]),
        EventType::OrderCancelled => ("CANCELLED", vec![]),
        EventType::OrderFailed => ("FAILED", vec!["failureReason"]),
        EventType::OrderCreated | EventType::VoucherIssued => ("", vec![]),
    };
    let data_schema = if status.is_empty() {
        data_ref
    } else {
        json!({"allOf": [data_ref, {"properties": {"status": {"const": status}}, "required": required}]})
    };
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": format!("urn:orders:events:{}:v1", kind.as_str()),
        "title": kind.as_str(),
        "description": format!(
            "The `{}` event (version 1): a CloudEvents 1.0 envelope in structured JSON. `sequence` is \
             the order's version after the change (compare as an integer); `traceparent` is the W3C \
             trace the change belongs to.",
            kind.as_str()
        ),
        "type": "object",
        "required": ["specversion", "id", "source", "type", "time", "subject", "datacontenttype", "sequence", "data"],
        "properties": {
            "specversion": {"const": "1.0"},
            "id": {"type": "string", "format": "uuid", "description": "Unique per event; the webhook-id of its deliveries."},
            "source": {"const": super::SOURCE},
            "type": {"const": kind.as_str()},
            "time": {"type": "string", "format": "date-time"},
            "subject": {"type": "string", "format": "uuid", "description": "The order id."},
            "datacontenttype": {"const": "application/json"},
            "sequence": {"type": "string", "pattern": "^[1-9][0-9]*$"},
            "traceparent": {"type": "string", "pattern": "^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$"},
            "data": data_schema
        },
        "$defs": defs
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ORDERS_WRITE_EVENT_SCHEMAS=1 cargo test -p orders-domain schema` rewrites the files.
    #[test]
    fn the_documented_schemas_are_the_generated_ones() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/events");
        for kind in EventType::ALL {
            let path = dir.join(file_name(kind));
            let generated = serde_json::to_string_pretty(&event_schema(kind)).unwrap() + "\n";
            if std::env::var_os("ORDERS_WRITE_EVENT_SCHEMAS").is_some() {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&path, &generated).unwrap();
            }
            let documented = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(documented, generated, "{} is stale", path.display());
        }
    }

    #[test]
    fn data_refs_resolve_inside_the_document() {
        let schema = event_schema(EventType::OrderShipped);
        let text = schema.to_string();
        assert!(!text.contains("#/components/"), "{text}");
        assert!(schema["$defs"]["OrderChange"]["properties"]["trackingNumber"].is_object());
        assert!(schema["$defs"]["OrderStatus"].is_object(), "{text}");
    }
}
