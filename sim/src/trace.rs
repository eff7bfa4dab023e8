//! `--trace FILE`: every processed event as one JSON line, in processing order.
//!
//! The bytes are deterministic: keys are sorted (serde_json's map is ordered), times are
//! virtual microseconds, and nothing from the wall clock or the file system appears.
//! Line shapes (`t` is true virtual time in microseconds):
//!
//! ```text
//! {"ev":"deliver","from":"n1","msg":{..},"t":1200,"to":"n2"}
//! {"ev":"request","node":"n2","op":{..},"request":"c1#3","t":1300}
//! {"ev":"reply","node":"n2","request":"c1#3","result":{..},"t":1900}
//! {"ev":"client-retry","attempt":2,"request":"c1#3","t":31900}
//! {"ev":"timer","node":"n1","t":50000,"timer":..}
//! {"ev":"note","node":"n1","note":"...","t":50000}
//! {"ev":"drop","from":"n1","reason":"...","t":1200,"to":"n3"}
//! {"ev":"fault","action":"partition: ...","t":10000000}
//! {"ev":"role","node":"n1","role":"leader","t":10250000,"term":3}
//! {"ev":"end","fingerprint":"0123456789abcdef","t":45000000}
//! ```

use crate::engine::event::Event;
use crate::engine::RoleChange;
use serde_json::{json, Value as Json};
use simkv_protocols::{NodeId, Protocol, Time};
use std::io::Write;

/// A trace sink. Write errors are remembered and reported once at the end, so that a full
/// disk cannot change the run itself.
pub struct Trace {
    out: Box<dyn Write>,
    error: Option<std::io::Error>,
    /// Whether to trace each message sent (`send` lines), off by default so that `--trace`
    /// files keep their shape; space-time diagrams ask for them ([`Trace::with_sends`]).
    sends: bool,
}

impl Trace {
    /// A trace writing to `out` (buffer it: every event is a line).
    pub fn new(out: Box<dyn Write>) -> Trace {
        Trace {
            out,
            error: None,
            sends: false,
        }
    }

    /// Also traces every message a link accepts, when it was sent and when it will arrive:
    /// `{"at":1900,"ev":"send","from":"n1","t":1200,"to":"n2"}` (and `"copy":true` for a
    /// duplicate). Tracing never moves a run.
    pub fn with_sends(mut self) -> Trace {
        self.sends = true;
        self
    }

    pub(crate) fn send(&mut self, t: Time, from: NodeId, to: NodeId, at: Time, copy: bool) {
        if !self.sends {
            return;
        }
        let mut line = json!({"ev": "send", "t": t.as_micros(), "from": from.to_string(),
            "to": to.to_string(), "at": at.as_micros()});
        if copy {
            line["copy"] = Json::Bool(true);
        }
        self.line(line);
    }

    fn line(&mut self, value: Json) {
        if self.error.is_some() {
            return;
        }
        let result = serde_json::to_writer(&mut self.out, &value)
            .map_err(std::io::Error::from)
            .and_then(|()| self.out.write_all(b"\n"));
        if let Err(e) = result {
            self.error = Some(e);
        }
    }

    pub(crate) fn event<P: Protocol>(&mut self, t: Time, event: &Event<P>) {
        if let Some(line) = event_json(t, event) {
            self.line(line);
        }
    }

    pub(crate) fn note(&mut self, t: Time, node: NodeId, note: &str) {
        let line =
            json!({"ev": "note", "t": t.as_micros(), "node": node.to_string(), "note": note});
        self.line(line);
    }

    pub(crate) fn drop(&mut self, t: Time, from: NodeId, to: NodeId, reason: &str) {
        let line = json!({"ev": "drop", "t": t.as_micros(), "from": from.to_string(),
            "to": to.to_string(), "reason": reason});
        self.line(line);
    }

    pub(crate) fn fault(&mut self, t: Time, action: &str) {
        self.line(fault_json(t, action));
    }

    /// A node's role or term changed (`role` is null once it crashed).
    pub(crate) fn role(&mut self, change: &RoleChange) {
        let line = json!({"ev": "role", "t": change.at.as_micros(),
            "node": change.node.to_string(), "role": change.role.map(|r| r.name),
            "term": change.term});
        self.line(line);
    }

    pub(crate) fn finish(&mut self, t: Time, fingerprint: u64) {
        let fingerprint = format!("{fingerprint:016x}");
        self.line(json!({"ev": "end", "t": t.as_micros(), "fingerprint": fingerprint}));
        if let Err(e) = self.out.flush() {
            self.error.get_or_insert(e);
        }
    }

    /// The first write error, if any.
    pub fn error(&self) -> Option<&std::io::Error> {
        self.error.as_ref()
    }
}

/// An event's trace line; `None` for a fault, whose effect [`fault_json`] traces when it is
/// applied.
pub(crate) fn event_json<P: Protocol>(t: Time, event: &Event<P>) -> Option<Json> {
    let t = t.as_micros();
    let line = match event {
        Event::Deliver { from, to, msg } => json!({"ev": "deliver", "t": t,
            "from": from.to_string(), "to": to.to_string(), "msg": msg}),
        Event::Request { to, request } => {
            let mut line = json!({"ev": "request", "t": t,
                "node": to.to_string(), "request": request.id.to_string(), "op": request.op,
                "quorum": request.quorum});
            if let Some(context) = &request.context {
                line["context"] = json!(context);
            }
            line
        }
        Event::Reply {
            from,
            request,
            result,
            context,
        } => {
            let mut line = json!({"ev": "reply", "t": t,
                "node": from.to_string(), "request": request.to_string(), "result": result});
            if let Some(context) = context {
                line["context"] = json!(context);
            }
            line
        }
        Event::Timer {
            node,
            timer,
            generation,
            ..
        } => json!({"ev": "timer", "t": t,
            "node": node.to_string(), "timer": timer, "generation": generation}),
        Event::ClientWake { client } => {
            json!({"ev": "client-wake", "t": t, "client": client.to_string()})
        }
        Event::ClientTimeout { client } => {
            json!({"ev": "client-timeout-check", "t": t, "client": client.to_string()})
        }
        Event::ClientRetry { request, attempt } => json!({"ev": "client-retry", "t": t,
            "request": request.to_string(), "attempt": attempt}),
        Event::Synced {
            node, mark, after, ..
        } => json!({"ev": "synced", "t": t,
            "node": node.to_string(), "mark": mark, "released": after.len()}),
        Event::Arrival => json!({"ev": "arrival", "t": t}),
        // The fault's effect is traced by `fault` when applied.
        Event::Fault { .. } => return None,
        Event::WorkloadEnd => json!({"ev": "workload-end", "t": t}),
        Event::WorkloadStop => json!({"ev": "workload-stop", "t": t}),
    };
    Some(line)
}

/// An applied fault's trace line.
pub(crate) fn fault_json(t: Time, action: &str) -> Json {
    json!({"ev": "fault", "t": t.as_micros(), "action": action})
}
