//! A plugin's exports, whichever contract version it was built for: the one place that tells
//! the versions apart. Everything past it speaks the current contract's types.

use wasmtime::Store;
use wasmtime::component::InstancePre;

use super::bindings::vigilo::alarms::types as current;
use super::host::HostState;
use super::{bindings, convert, v0_1};
use crate::event::{Event, FieldSet};

/// A component checked against a contract version, ready to instantiate.
pub(super) enum Pre {
    Current(bindings::RulePluginPre<HostState>),
    V0_1(v0_1::bindings::RulePluginPre<HostState>),
}

impl Pre {
    /// The component's exports checked against the current contract, else against 0.1.0. When
    /// neither fits, the error is the current contract's: that is what its author builds for.
    pub(super) fn new(instance_pre: InstancePre<HostState>) -> wasmtime::Result<Pre> {
        match bindings::RulePluginPre::new(instance_pre.clone()) {
            Ok(pre) => Ok(Pre::Current(pre)),
            Err(current) => v0_1::bindings::RulePluginPre::new(instance_pre)
                .map(Pre::V0_1)
                .map_err(|_| current),
        }
    }

    /// A new instance in `store`.
    pub(super) fn instantiate(&self, store: &mut Store<HostState>) -> wasmtime::Result<Exports> {
        Ok(match self {
            Pre::Current(pre) => Exports::Current(pre.instantiate(store)?),
            Pre::V0_1(pre) => Exports::V0_1(pre.instantiate(store)?),
        })
    }

    /// The contract version the component was built for.
    pub(super) fn contract(&self) -> &'static str {
        match self {
            Pre::Current(_) => "0.2.0",
            Pre::V0_1(_) => "0.1.0",
        }
    }
}

/// An instance's exports.
pub(super) enum Exports {
    Current(bindings::RulePlugin),
    V0_1(v0_1::bindings::RulePlugin),
}

impl Exports {
    /// `describe`.
    pub(super) fn describe(
        &self,
        store: &mut Store<HostState>,
    ) -> wasmtime::Result<current::PluginInfo> {
        match self {
            Exports::Current(b) => b.call_describe(store),
            Exports::V0_1(b) => b.call_describe(store).map(v0_1::info),
        }
    }

    /// `configure`.
    pub(super) fn configure(
        &self,
        store: &mut Store<HostState>,
        config: &str,
    ) -> wasmtime::Result<Result<(), String>> {
        match self {
            Exports::Current(b) => b.call_configure(store, config),
            Exports::V0_1(b) => b.call_configure(store, config),
        }
    }

    /// `on-event`, with the fields in `reads` (a 0.1.0 plugin gets them all).
    pub(super) fn on_event(
        &self,
        store: &mut Store<HostState>,
        event: &Event,
        reads: FieldSet,
    ) -> wasmtime::Result<Vec<current::Triggered>> {
        match self {
            Exports::Current(b) => {
                let fields = convert::fields_to_wit(event, reads);
                let event = current::Event {
                    ts_ms: event.ts().timestamp_millis(),
                    kind: convert::kind_to_wit(event.kind()),
                    fields: &fields,
                };
                b.call_on_event(store, event)
            }
            Exports::V0_1(b) => b
                .call_on_event(store, v0_1::event(event))
                .map(v0_1::triggered),
        }
    }
}
