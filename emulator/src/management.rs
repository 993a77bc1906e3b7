//! `$cbs` put-token and `$management` READ request handling (pure: request in, response out).

use fe2o3_amqp_types::{
    messaging::{message::Body, AmqpValue, ApplicationProperties, Message, Properties},
    primitives::{Array, OrderedMap, SimpleValue, Timestamp, Value},
};

use crate::{broker::Broker, event::EventMessage};

/// Which node a request was sent to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Node {
    /// `$cbs`
    Cbs,
    /// `$management`
    Management,
}

impl Node {
    /// The node's address.
    pub fn address(self) -> &'static str {
        match self {
            Node::Cbs => "$cbs",
            Node::Management => "$management",
        }
    }
}

fn app_prop(message: &EventMessage, key: &str) -> Option<String> {
    let props = message.application_properties.as_ref()?;
    match props.0.get(key)? {
        SimpleValue::String(s) => Some(s.clone()),
        SimpleValue::Symbol(s) => Some(s.as_str().to_string()),
        SimpleValue::Int(i) => Some(i.to_string()),
        SimpleValue::Long(i) => Some(i.to_string()),
        _ => None,
    }
}

fn response(request: &EventMessage, status: i32, description: &str, body: Value) -> EventMessage {
    let mut props = ApplicationProperties(OrderedMap::new());
    props
        .0
        .insert("status-code".to_string(), SimpleValue::Int(status));
    props.0.insert(
        "status-description".to_string(),
        SimpleValue::String(description.to_string()),
    );
    // pyamqp's management link reads the camel-case key (it is only told the kebab-case name of
    // the status code), so send the description under both spellings.
    props.0.insert(
        "statusDescription".to_string(),
        SimpleValue::String(description.to_string()),
    );
    let request_props = request.properties.as_ref();
    Message {
        header: None,
        delivery_annotations: None,
        message_annotations: None,
        properties: Some(Properties {
            correlation_id: request_props.and_then(|p| p.message_id.clone()),
            to: request_props.and_then(|p| p.reply_to.clone()),
            ..Properties::default()
        }),
        application_properties: Some(props),
        body: Body::Value(AmqpValue(body)),
        footer: None,
    }
}

/// The `reply-to` of a request, if any (fe2o3 clients set it to their client node).
pub fn reply_to(request: &EventMessage) -> Option<String> {
    request.properties.as_ref()?.reply_to.clone()
}

/// Handles one request to `node`.
pub fn handle(node: Node, broker: &Broker, request: &EventMessage) -> EventMessage {
    match node {
        Node::Cbs => put_token(request),
        Node::Management => management(broker, request),
    }
}

fn put_token(request: &EventMessage) -> EventMessage {
    match app_prop(request, "operation").as_deref() {
        Some("put-token") => {
            // Tokens are not validated (emulator accepts any SAS key); never log them.
            tracing::debug!(audience = ?app_prop(request, "name"), "cbs put-token accepted");
            response(request, 202, "Accepted", Value::Null)
        }
        other => response(
            request,
            400,
            &format!("Unsupported $cbs operation {other:?}"),
            Value::Null,
        ),
    }
}

fn string_map(entries: Vec<(&str, Value)>) -> Value {
    let mut map = OrderedMap::new();
    for (k, v) in entries {
        map.insert(Value::String(k.to_string()), v);
    }
    Value::Map(map)
}

fn management(broker: &Broker, request: &EventMessage) -> EventMessage {
    let operation = app_prop(request, "operation");
    let kind = app_prop(request, "type");
    if operation.as_deref() != Some("READ") {
        return response(
            request,
            400,
            &format!("Unsupported $management operation {operation:?}"),
            Value::Null,
        );
    }
    let Some(name) = app_prop(request, "name") else {
        return response(request, 400, "Missing 'name'", Value::Null);
    };
    let hub = match broker.hub(&name) {
        Ok(hub) => hub,
        Err(err) => return response(request, 404, &err.to_string(), Value::Null),
    };
    match kind.as_deref() {
        Some("com.microsoft:eventhub") => {
            let ids: Vec<Value> = (0..hub.partitions.len())
                .map(|i| Value::String(i.to_string()))
                .collect();
            let body = string_map(vec![
                ("name", Value::String(hub.name.clone())),
                (
                    "created_at",
                    Value::Timestamp(Timestamp::from_milliseconds(hub.created_ms)),
                ),
                ("partition_count", Value::Int(hub.partitions.len() as i32)),
                ("partition_ids", Value::Array(Array::from(ids))),
                ("type", Value::String("com.microsoft:eventhub".to_string())),
            ]);
            response(request, 200, "OK", body)
        }
        Some("com.microsoft:partition") => {
            let Some(partition) = app_prop(request, "partition") else {
                return response(request, 400, "Missing 'partition'", Value::Null);
            };
            let log = match hub.partition(&partition) {
                Ok(log) => log,
                Err(err) => return response(request, 404, &err.to_string(), Value::Null),
            };
            let info = log.info();
            let body = string_map(vec![
                ("name", Value::String(hub.name.clone())),
                ("partition", Value::String(partition.clone())),
                ("type", Value::String("com.microsoft:partition".to_string())),
                ("begin_sequence_number", Value::Long(info.begin_seq)),
                ("last_enqueued_sequence_number", Value::Long(info.last_seq)),
                (
                    "last_enqueued_offset",
                    Value::String(info.last_offset.to_string()),
                ),
                (
                    "last_enqueued_time_utc",
                    Value::Timestamp(Timestamp::from_milliseconds(info.last_enqueued_ms)),
                ),
                ("is_partition_empty", Value::Bool(info.is_empty)),
                ("last_enqueued_sequence_number_epoch", Value::Long(0)),
            ]);
            response(request, 200, "OK", body)
        }
        other => response(
            request,
            400,
            &format!("Unsupported READ type {other:?}"),
            Value::Null,
        ),
    }
}
