//! Windows event XML (`<Event>`) into a JSON tree addressed with `$xml` in schema paths.
