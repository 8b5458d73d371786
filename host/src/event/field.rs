//! The vocabulary of event fields: their names, types and which kinds of event carry them.
//!
//! Fields are a closed enum rather than free strings so that a rule naming a field that does not
//! exist is caught when the pack loads, and so that an [`Event`](super::Event) can keep its values
//! in fixed slots instead of a hash map (the per-event path stays allocation-light).

use std::fmt;

/// What kind of thing an event describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventKind {
    /// Focused application, window title, URL and time spent.
    Activity,
    /// USB devices inserted or removed, and files written to USB storage.
    Usb,
    /// Changes to the monitoring setup itself (packs, alarms, plugins).
    Account,
}

impl EventKind {
    /// Every kind, in a stable order.
    pub const ALL: [EventKind; 3] = [EventKind::Activity, EventKind::Usb, EventKind::Account];

    /// The name used in JSONL and in packs.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Activity => "activity",
            EventKind::Usb => "usb",
            EventKind::Account => "account",
        }
    }

    /// Parses a kind name as written in JSONL or a pack.
    pub fn from_name(name: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The bit of this kind in a [`KindSet`].
    pub fn bit(self) -> KindSet {
        KindSet(1 << self as u8)
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of event kinds, as a bit mask: which kinds carry a field, or which kinds an alarm can
/// match.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct KindSet(u8);

impl KindSet {
    /// No kind at all: an alarm whose conditions need this set can never match.
    pub const EMPTY: KindSet = KindSet(0);
    /// Every kind.
    pub const ALL: KindSet = KindSet(0b111);

    /// Whether `kind` is in the set.
    pub fn contains(self, kind: EventKind) -> bool {
        self.0 & kind.bit().0 != 0
    }

    /// Kinds in both sets.
    pub fn and(self, other: KindSet) -> KindSet {
        KindSet(self.0 & other.0)
    }

    /// Kinds in either set.
    pub fn or(self, other: KindSet) -> KindSet {
        KindSet(self.0 | other.0)
    }

    /// Kinds not in this set.
    pub fn complement(self) -> KindSet {
        KindSet(!self.0 & KindSet::ALL.0)
    }

    /// Whether no kind is in the set.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The kinds in the set, in [`EventKind::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = EventKind> {
        EventKind::ALL
            .into_iter()
            .filter(move |k| self.contains(*k))
    }
}

impl fmt::Display for KindSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(EventKind::name).collect();
        f.write_str(&names.join(", "))
    }
}

/// Whether a field holds text or a number; decides which operators a condition may use on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldType {
    /// Free text, compared case-insensitively unless a condition says otherwise.
    Text,
    /// A non-negative number (seconds, bytes, a process id).
    Number,
}

macro_rules! fields {
    ($( $variant:ident = $name:literal, $ty:ident, [$($kind:ident),+] ; )+) => {
        /// A named field of an event. `kind` and `ts` are not fields: every event has them.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Field { $( #[doc = concat!("`", $name, "`")] $variant, )+ }

        impl Field {
            /// Every field, in the canonical order used when an event is written out.
            pub const ALL: &'static [Field] = &[ $( Field::$variant, )+ ];

            /// The field's name in JSONL and in packs.
            pub fn name(self) -> &'static str {
                match self { $( Field::$variant => $name, )+ }
            }

            /// Whether the field is text or a number.
            pub fn field_type(self) -> FieldType {
                match self { $( Field::$variant => FieldType::$ty, )+ }
            }

            /// Looks a field up by its name (a `match`, not a search: the JSONL reader calls
            /// this for every key of every line).
            pub fn from_name(name: &str) -> Option<Field> {
                match name { $( $name => Some(Field::$variant), )+ _ => None }
            }

            /// The kinds of event that carry this field.
            pub fn kinds(self) -> KindSet {
                match self { $( Field::$variant => KindSet(0 $( | EventKind::$kind.bit().0 )+), )+ }
            }
        }
    };
}

fields! {
    Username = "username", Text, [Activity, Usb];
    LogonDomain = "logon_domain", Text, [Activity];
    Computer = "computer", Text, [Activity, Usb, Account];
    PrivateIp = "private_ip", Text, [Activity];
    Executable = "executable", Text, [Activity, Usb];
    Title = "title", Text, [Activity];
    Description = "description", Text, [Activity];
    Url = "url", Text, [Activity];
    PrimaryDomain = "primary_domain", Text, [Activity];
    Duration = "duration", Number, [Activity];
    Pid = "pid", Number, [Activity, Usb];
    Action = "action", Text, [Usb];
    VendorId = "vendor_id", Text, [Usb];
    ProductId = "product_id", Text, [Usb];
    Vendor = "vendor", Text, [Usb];
    Product = "product", Text, [Usb];
    Serial = "serial", Text, [Usb];
    DeviceClass = "device_class", Text, [Usb];
    MountPoint = "mount_point", Text, [Usb];
    Path = "path", Text, [Usb];
    Bytes = "bytes", Number, [Usb];
    Actor = "actor", Text, [Account];
    EventName = "event_name", Text, [Account];
    ActionType = "action_type", Text, [Account];
    ActionObject = "action_object", Text, [Account];
    Detail = "detail", Text, [Account];
}

/// Number of fields; the size of an event's value slots.
pub const FIELD_COUNT: usize = Field::ALL.len();

impl Field {
    /// The slot of this field in an event.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The fields an event of `kind` may carry, comma-separated, for error messages.
    pub fn names_for(kind: KindSet) -> String {
        let names: Vec<&str> = Field::ALL
            .iter()
            .filter(|f| !f.kinds().and(kind).is_empty())
            .map(|f| f.name())
            .collect();
        names.join(", ")
    }
}

/// A set of fields, as a bit mask: the fields a plugin reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct FieldSet(u32);

// One bit per field.
const _: () = assert!(FIELD_COUNT <= 32);

impl FieldSet {
    /// No field.
    pub const EMPTY: FieldSet = FieldSet(0);
    /// Every field.
    pub const ALL: FieldSet = FieldSet(u32::MAX >> (32 - FIELD_COUNT));

    /// Whether `field` is in the set.
    pub fn contains(self, field: Field) -> bool {
        self.0 & (1 << field.index()) != 0
    }

    /// The set with `field` added.
    pub fn with(self, field: Field) -> FieldSet {
        FieldSet(self.0 | 1 << field.index())
    }

    /// The fields in the set, in [`Field::ALL`] order. Walks the set bits only: a plugin's
    /// event is built from this on every call, usually from a few fields or none.
    pub fn iter(self) -> impl Iterator<Item = Field> {
        let mut bits = self.0;
        std::iter::from_fn(move || {
            let i = bits.trailing_zeros() as usize;
            let field = Field::ALL.get(i).copied()?;
            bits &= bits - 1;
            Some(field)
        })
    }
}

impl FromIterator<Field> for FieldSet {
    fn from_iter<I: IntoIterator<Item = Field>>(fields: I) -> FieldSet {
        fields.into_iter().fold(FieldSet::EMPTY, FieldSet::with)
    }
}

impl fmt::Display for FieldSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(Field::name).collect();
        f.write_str(&names.join(", "))
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The values the `action` field of a usb event may take.
pub const USB_ACTIONS: [&str; 3] = ["inserted", "removed", "file_written"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_set_holds_exactly_the_fields_put_in() {
        let set: FieldSet = [Field::Path, Field::Username, Field::Detail]
            .into_iter()
            .collect();
        assert_eq!(
            set.iter().collect::<Vec<_>>(),
            [Field::Username, Field::Path, Field::Detail]
        );
        assert_eq!(set.to_string(), "username, path, detail");
        assert!(!set.contains(Field::Title));
        assert_eq!(FieldSet::ALL.iter().count(), FIELD_COUNT);
        assert_eq!(FieldSet::EMPTY.iter().count(), 0);
    }

    #[test]
    fn every_field_round_trips_by_name() {
        for f in Field::ALL {
            assert_eq!(Field::from_name(f.name()), Some(*f));
            assert!(!f.kinds().is_empty(), "{f} belongs to no kind");
        }
        assert_eq!(Field::from_name("nope"), None);
    }

    #[test]
    fn kind_sets_combine() {
        let au = EventKind::Activity.bit().or(EventKind::Usb.bit());
        assert!(au.contains(EventKind::Usb));
        assert!(!au.contains(EventKind::Account));
        assert_eq!(au.complement(), EventKind::Account.bit());
        assert_eq!(Field::Url.kinds().and(Field::Bytes.kinds()), KindSet::EMPTY);
        assert_eq!(au.to_string(), "activity, usb");
    }
}
