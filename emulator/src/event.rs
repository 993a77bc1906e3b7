//! Events as the emulator stores and serves them: the producer's bare message with the broker
//! annotations (`x-opt-sequence-number`, `x-opt-offset`, `x-opt-enqueued-time`,
//! `x-opt-partition-key`) stamped into its message annotations.

use bytes::Bytes;
use fe2o3_amqp_types::messaging::message::__private::{Deserializable, Serializable};
use fe2o3_amqp_types::{
    messaging::{annotations::OwnedKey, message::Body, Batch, Data, Message, MessageAnnotations},
    primitives::{Binary, Symbol, Timestamp, Value},
};

/// Message format of an Event Hubs batch (`0x80013700`): the body is one `data` section per
/// event, each holding a complete AMQP-encoded message.
pub const BATCH_MESSAGE_FORMAT: u32 = 0x8001_3700;

/// Annotation keys stamped by the broker.
pub const SEQUENCE_NUMBER: &str = "x-opt-sequence-number";
/// Offset annotation (a string holding the decimal byte position).
pub const OFFSET: &str = "x-opt-offset";
/// Enqueued-time annotation (AMQP timestamp).
pub const ENQUEUED_TIME: &str = "x-opt-enqueued-time";
/// Partition-key annotation (string), set by producers and kept by the broker.
pub const PARTITION_KEY: &str = "x-opt-partition-key";

/// The message type the emulator handles: any body kind, dynamically typed values.
pub type EventMessage = Message<Body<Value>>;

/// One event retained in a partition.
#[derive(Debug)]
pub struct StoredEvent {
    /// Sequence number within the partition, from 0.
    pub seq: i64,
    /// Byte position within the partition (sum of the sizes of all earlier events).
    pub offset: i64,
    /// Enqueued time, milliseconds since the Unix epoch (non-decreasing within a partition).
    pub enqueued_ms: i64,
    /// Size counted for offsets and byte retention (encoded size of the producer's message).
    pub size: u64,
    /// The message as delivered to consumers, annotations included.
    pub message: EventMessage,
}

/// Reads the partition key annotation of a message, if any (string values only).
pub fn partition_key(message: &EventMessage) -> Option<String> {
    let annotations = message.message_annotations.as_ref()?;
    match annotations
        .0
        .get(&OwnedKey::Symbol(Symbol::from(PARTITION_KEY)))
    {
        Some(Value::String(key)) => Some(key.clone()),
        _ => None,
    }
}

/// Stamps the broker annotations into `message` (replacing any a producer may have sent) and
/// drops producer delivery annotations (they are hop-by-hop).
pub fn stamp(
    message: &mut EventMessage,
    seq: i64,
    offset: i64,
    enqueued_ms: i64,
    key: Option<&str>,
) {
    message.delivery_annotations = None;
    let annotations = message
        .message_annotations
        .get_or_insert_with(|| MessageAnnotations(Default::default()));
    let map = &mut annotations.0;
    map.insert(sym(SEQUENCE_NUMBER), Value::Long(seq));
    map.insert(sym(OFFSET), Value::String(offset.to_string()));
    map.insert(
        sym(ENQUEUED_TIME),
        Value::Timestamp(Timestamp::from_milliseconds(enqueued_ms)),
    );
    match key {
        Some(key) => {
            map.insert(sym(PARTITION_KEY), Value::String(key.to_string()));
        }
        None => {
            map.swap_remove(&sym(PARTITION_KEY));
        }
    }
}

fn sym(key: &str) -> OwnedKey {
    OwnedKey::Symbol(Symbol::from(key))
}

/// A message with a single `data` body section.
pub fn data_message(body: Bytes) -> EventMessage {
    Message {
        header: None,
        delivery_annotations: None,
        message_annotations: None,
        properties: None,
        application_properties: None,
        body: Body::Data(Batch::new(vec![Data(Binary::from(body.to_vec()))])),
        footer: None,
    }
}

/// Encoded size of a message, used as its size for offsets and retention.
pub fn encoded_size(message: &EventMessage) -> Result<u64, serde_amqp::Error> {
    let size = serde_amqp::serialized_size(&Serializable(message))?;
    Ok(size as u64)
}

/// Encodes a message to its AMQP wire form.
pub fn encode(message: &EventMessage) -> Result<Vec<u8>, serde_amqp::Error> {
    serde_amqp::to_vec(&Serializable(message))
}

/// Decodes a message from its AMQP wire form.
pub fn decode(bytes: &[u8]) -> Result<EventMessage, serde_amqp::Error> {
    let message: Deserializable<EventMessage> = serde_amqp::from_slice(bytes)?;
    Ok(message.0)
}

/// Splits a batch (format [`BATCH_MESSAGE_FORMAT`]) into its events. The envelope's partition key
/// is applied to inner events that carry none.
pub fn split_batch(envelope: EventMessage) -> Result<Vec<EventMessage>, serde_amqp::Error> {
    let envelope_key = partition_key(&envelope);
    let sections = match envelope.body {
        Body::Data(batch) => batch.into_inner(),
        _ => Vec::new(),
    };
    let mut events = Vec::with_capacity(sections.len());
    for Data(bytes) in sections {
        let mut inner = decode(&bytes)?;
        if let (Some(key), None) = (&envelope_key, partition_key(&inner)) {
            inner
                .message_annotations
                .get_or_insert_with(|| MessageAnnotations(Default::default()))
                .0
                .insert(sym(PARTITION_KEY), Value::String(key.clone()));
        }
        events.push(inner);
    }
    Ok(events)
}
