//! The terminal's tables: names, columns and their types, keys, unique constraints and
//! foreign keys, and the rows a factory-default device ships with (docs/device-api.md §3.8).
//!
//! Columns the documentation does not list for a table ("others" in §3.8, custom fields)
//! are handled by *open* tables, which accept any column name and add it on first use.

use crate::model::{DEFAULT_SEC_BOX_ID, DoorDrive, Model};

/// Storage type of a column, with the firmware's name for type errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    /// A small integer (flags, codes): the firmware says `int`.
    Int,
    /// A 64-bit integer (ids, epochs, card values up to u64): the firmware says `int64`.
    Int64,
    /// Text: the firmware says `string`.
    Str,
}

impl ColumnType {
    /// The firmware's name of the type, as used in `Invalid member` errors.
    pub fn wire_name(self) -> &'static str {
        match self {
            ColumnType::Int => "int",
            ColumnType::Int64 => "int64",
            ColumnType::Str => "string",
        }
    }

    /// Whether the column has integer affinity.
    pub fn is_integer(self) -> bool {
        !matches!(self, ColumnType::Str)
    }
}

/// One column of a table definition.
#[derive(Debug, Clone, Copy)]
pub struct ColumnDef {
    /// Column name.
    pub name: &'static str,
    /// Storage type.
    pub ty: ColumnType,
}

/// A column whose value must match a row of another table's `id` (deleting that row
/// deletes this one too).
#[derive(Debug, Clone, Copy)]
pub struct ForeignKey {
    /// The referencing column.
    pub column: &'static str,
    /// The referenced table (always by its `id`).
    pub references: &'static str,
}

/// The static definition of one table.
#[derive(Debug)]
pub struct TableDef {
    /// Table name (the `object` of the objects API).
    pub name: &'static str,
    /// Documented columns, in the device's order.
    pub columns: &'static [ColumnDef],
    /// Whether the first column is an `id` primary key (otherwise rows have a hidden rowid).
    pub has_id: bool,
    /// Sets of columns whose values must be unique together.
    pub unique: &'static [&'static [&'static str]],
    /// References to other tables, cascading on delete.
    pub foreign_keys: &'static [ForeignKey],
    /// Whether columns outside `columns` are accepted (added on first use).
    pub open: bool,
    /// For a log kept as a ring: how many of the newest entries it keeps (older ones go
    /// as new ones come).
    pub ring: Option<usize>,
}

const fn int(name: &'static str) -> ColumnDef {
    ColumnDef {
        name,
        ty: ColumnType::Int,
    }
}
const fn i64c(name: &'static str) -> ColumnDef {
    ColumnDef {
        name,
        ty: ColumnType::Int64,
    }
}
const fn text(name: &'static str) -> ColumnDef {
    ColumnDef {
        name,
        ty: ColumnType::Str,
    }
}
const fn fk(column: &'static str, references: &'static str) -> ForeignKey {
    ForeignKey { column, references }
}

const ID: ColumnDef = i64c("id");

/// Entries the device's event and change logs keep: a ring of the newest 10,000.
const LOG_RING: usize = 10_000;

/// `def` kept as a ring of its newest `entries` rows.
const fn ring(def: TableDef, entries: usize) -> TableDef {
    TableDef {
        ring: Some(entries),
        ..def
    }
}
const USER_FK: &[ForeignKey] = &[fk("user_id", "users")];

const fn table(
    name: &'static str,
    columns: &'static [ColumnDef],
    unique: &'static [&'static [&'static str]],
    foreign_keys: &'static [ForeignKey],
) -> TableDef {
    TableDef {
        name,
        columns,
        has_id: true,
        unique,
        foreign_keys,
        open: false,
        ring: None,
    }
}

/// A link table: no `id`, its two columns unique together (`unique` names them).
const fn link(
    name: &'static str,
    columns: &'static [ColumnDef],
    unique: &'static [&'static [&'static str]],
    foreign_keys: &'static [ForeignKey],
) -> TableDef {
    TableDef {
        name,
        columns,
        has_id: false,
        unique,
        foreign_keys,
        open: false,
        ring: None,
    }
}

const fn open(name: &'static str, columns: &'static [ColumnDef]) -> TableDef {
    TableDef {
        name,
        columns,
        has_id: true,
        unique: &[],
        foreign_keys: &[],
        open: true,
        ring: None,
    }
}

/// Every table the simulator knows, in docs/device-api.md §3.8 order.
pub static TABLES: &[TableDef] = &[
    table(
        "users",
        &[
            ID,
            text("registration"),
            text("name"),
            text("password"),
            text("salt"),
            i64c("begin_time"),
            i64c("end_time"),
            int("user_type_id"),
            i64c("last_access"),
            i64c("image_timestamp"),
            i64c("expires"),
            text("panic_password"),
            text("panic_salt"),
        ],
        &[],
        &[],
    ),
    table(
        "cards",
        &[ID, i64c("value"), i64c("user_id"), text("secret")],
        &[&["value"]],
        USER_FK,
    ),
    table(
        "qrcodes",
        &[ID, text("value"), i64c("user_id")],
        &[&["value"]],
        USER_FK,
    ),
    table(
        "uhf_tags",
        &[ID, text("value"), i64c("user_id")],
        &[&["value"]],
        USER_FK,
    ),
    table(
        "pins",
        &[ID, text("value"), i64c("user_id"), int("pin_type")],
        &[],
        USER_FK,
    ),
    table(
        "templates",
        &[
            ID,
            i64c("user_id"),
            int("finger_position"),
            int("finger_type"),
            text("template"),
        ],
        &[],
        USER_FK,
    ),
    table(
        "face_templates",
        &[ID, i64c("user_id"), text("template")],
        &[],
        USER_FK,
    ),
    TableDef {
        name: "user_roles",
        columns: &[i64c("user_id"), int("role")],
        has_id: false,
        unique: &[&["user_id"]],
        foreign_keys: USER_FK,
        open: false,
        ring: None,
    },
    table("groups", &[ID, text("name")], &[], &[]),
    link(
        "user_groups",
        &[i64c("user_id"), i64c("group_id")],
        &[&["user_id", "group_id"]],
        &[fk("user_id", "users"), fk("group_id", "groups")],
    ),
    table(
        "access_rules",
        &[ID, text("name"), int("type"), int("priority")],
        &[],
        &[],
    ),
    link(
        "access_rule_time_zones",
        &[i64c("access_rule_id"), i64c("time_zone_id")],
        &[&["access_rule_id", "time_zone_id"]],
        &[
            fk("access_rule_id", "access_rules"),
            fk("time_zone_id", "time_zones"),
        ],
    ),
    link(
        "user_access_rules",
        &[i64c("user_id"), i64c("access_rule_id")],
        &[&["user_id", "access_rule_id"]],
        &[fk("user_id", "users"), fk("access_rule_id", "access_rules")],
    ),
    link(
        "group_access_rules",
        &[i64c("group_id"), i64c("access_rule_id")],
        &[&["group_id", "access_rule_id"]],
        &[
            fk("group_id", "groups"),
            fk("access_rule_id", "access_rules"),
        ],
    ),
    link(
        "portal_access_rules",
        &[i64c("portal_id"), i64c("access_rule_id")],
        &[&["portal_id", "access_rule_id"]],
        &[
            fk("portal_id", "portals"),
            fk("access_rule_id", "access_rules"),
        ],
    ),
    link(
        "area_access_rules",
        &[i64c("area_id"), i64c("access_rule_id")],
        &[&["area_id", "access_rule_id"]],
        &[fk("area_id", "areas"), fk("access_rule_id", "access_rules")],
    ),
    table("time_zones", &[ID, text("name")], &[], &[]),
    table(
        "time_spans",
        &[
            ID,
            i64c("time_zone_id"),
            int("start"),
            int("end"),
            int("sun"),
            int("mon"),
            int("tue"),
            int("wed"),
            int("thu"),
            int("fri"),
            int("sat"),
            int("hol1"),
            int("hol2"),
            int("hol3"),
        ],
        &[],
        &[fk("time_zone_id", "time_zones")],
    ),
    table(
        "holidays",
        &[
            ID,
            text("name"),
            i64c("start"),
            i64c("end"),
            int("hol1"),
            int("hol2"),
            int("hol3"),
            int("repeats"),
        ],
        &[],
        &[],
    ),
    table("areas", &[ID, text("name")], &[], &[]),
    table(
        "portals",
        &[ID, text("name"), i64c("area_from_id"), i64c("area_to_id")],
        &[],
        &[],
    ),
    table(
        "actions",
        &[
            ID,
            i64c("group_id"),
            text("name"),
            text("action"),
            text("parameters"),
            int("run_at"),
        ],
        &[],
        &[],
    ),
    link(
        "portal_actions",
        &[i64c("portal_id"), i64c("action_id")],
        &[&["portal_id", "action_id"]],
        &[fk("portal_id", "portals"), fk("action_id", "actions")],
    ),
    table(
        "devices",
        &[ID, text("name"), text("ip"), text("public_key")],
        &[],
        &[],
    ),
    table(
        "access_logs",
        &[
            ID,
            i64c("time"),
            int("event"),
            i64c("device_id"),
            i64c("identifier_id"),
            i64c("user_id"),
            i64c("portal_id"),
            i64c("identification_rule_id"),
            i64c("card_value"),
            text("qrcode_value"),
            text("uhf_tag"),
            text("pin_value"),
            int("confidence"),
            int("mask"),
            i64c("log_type_id"),
            text("component_id"),
        ],
        &[],
        &[],
    ),
    link(
        "access_log_access_rules",
        &[i64c("access_log_id"), i64c("access_rule_id")],
        &[&["access_log_id", "access_rule_id"]],
        &[fk("access_log_id", "access_logs")],
    ),
    table(
        "alarm_logs",
        &[
            ID,
            int("event"),
            int("cause"),
            i64c("user_id"),
            i64c("time"),
            i64c("access_log_id"),
            i64c("door_id"),
        ],
        &[],
        &[],
    ),
    ring(
        table(
            "change_logs",
            &[
                ID,
                text("operation_type"),
                text("table_name"),
                i64c("table_id"),
                i64c("timestamp"),
            ],
            &[],
            &[],
        ),
        LOG_RING,
    ),
    table(
        "catra_infos",
        &[
            ID,
            i64c("left_turns"),
            i64c("right_turns"),
            i64c("entrance_turns"),
            i64c("exit_turns"),
        ],
        &[],
        &[],
    ),
    table(
        "sec_boxs",
        &[
            ID,
            int("enabled"),
            int("relay_timeout"),
            int("door_sensor_enabled"),
            int("door_sensor_idle"),
            int("auto_close_enabled"),
        ],
        &[],
        &[],
    ),
    ring(
        table(
            "access_events",
            &[
                ID,
                text("event"),
                text("type"),
                text("identification"),
                i64c("device_id"),
                i64c("timestamp"),
            ],
            &[],
            &[],
        ),
        LOG_RING,
    ),
    TableDef {
        name: "c_users",
        columns: &[ID, i64c("user_id")],
        has_id: true,
        unique: &[&["user_id"]],
        foreign_keys: USER_FK,
        open: true,
        ring: None,
    },
    open("custom_tables", &[ID, text("name")]),
    open("custom_columns", &[ID, text("name")]),
    open("user_types", &[ID, text("name"), int("require_visitor")]),
    table(
        "opening_times",
        &[ID, i64c("user_id"), i64c("door_id"), i64c("time")],
        &[],
        &[],
    ),
    open("reports", &[ID, text("name")]),
    open("report_filters", &[ID, i64c("report_id")]),
    open("contacts", &[ID, text("name")]),
    open("timed_alarms", &[ID, text("name")]),
    open("custom_thresholds", &[ID]),
    open("network_interlocking_rules", &[ID]),
    open("contingency_cards", &[ID, i64c("value")]),
    open("log_types", &[ID, text("name")]),
    open("alarm_zones", &[ID]),
    open("scheduled_unlocks", &[ID, text("name")]),
    open("scheduled_unlock_access_rules", &[ID]),
    open("wiegand_modes", &[ID]),
];

/// The definition of `name`, if the simulator knows such a table at all.
pub fn table_def(name: &str) -> Option<&'static TableDef> {
    TABLES.iter().find(|t| t.name == name)
}

/// Whether `model` has `table` (`change_logs` exists on the iDFace family only).
pub fn model_has_table(model: Model, table: &str) -> bool {
    match table {
        "change_logs" => model.has_change_logs(),
        "sec_boxs" => model.door_drive() == DoorDrive::SecBox,
        _ => true,
    }
}

/// A factory row: `(column, value)` pairs where integers and text are given directly.
#[derive(Debug, Clone)]
pub enum FactoryValue {
    /// An integer cell.
    Int(i128),
    /// A text cell.
    Text(&'static str),
}

/// The rows a factory-default `model` ships with, per table.
pub fn factory_rows(
    model: Model,
    device_id: i64,
) -> Vec<(&'static str, Vec<(&'static str, FactoryValue)>)> {
    use FactoryValue::{Int, Text};
    let mut rows = vec![
        ("groups", vec![("id", Int(1)), ("name", Text("Default"))]),
        (
            "time_zones",
            vec![("id", Int(1)), ("name", Text("Always Allowed"))],
        ),
        (
            "time_spans",
            vec![
                ("id", Int(1)),
                ("time_zone_id", Int(1)),
                ("start", Int(0)),
                ("end", Int(86399)),
                ("sun", Int(1)),
                ("mon", Int(1)),
                ("tue", Int(1)),
                ("wed", Int(1)),
                ("thu", Int(1)),
                ("fri", Int(1)),
                ("sat", Int(1)),
                ("hol1", Int(1)),
                ("hol2", Int(1)),
                ("hol3", Int(1)),
            ],
        ),
        (
            "access_rules",
            vec![
                ("id", Int(1)),
                ("name", Text("Default")),
                ("type", Int(1)),
                ("priority", Int(0)),
            ],
        ),
        (
            "access_rule_time_zones",
            vec![("access_rule_id", Int(1)), ("time_zone_id", Int(1))],
        ),
        ("areas", vec![("id", Int(1)), ("name", Text("Outside"))]),
        ("areas", vec![("id", Int(2)), ("name", Text("Inside"))]),
        (
            "portals",
            vec![
                ("id", Int(1)),
                ("name", Text("Door 1")),
                ("area_from_id", Int(1)),
                ("area_to_id", Int(2)),
            ],
        ),
        (
            "devices",
            vec![
                ("id", Int(i128::from(device_id))),
                ("name", Text(model.device_name())),
                ("ip", Text("192.168.0.129")),
                ("public_key", Text("")),
            ],
        ),
    ];
    let (action, parameters, name) = match model.door_drive() {
        DoorDrive::SecBox => ("sec_box", "id=65793, reason=1", "Security Box"),
        DoorDrive::Relay { .. } => ("door", "door=1", "Door"),
    };
    rows.push((
        "actions",
        vec![
            ("id", Int(1)),
            ("group_id", Int(1)),
            ("name", Text(name)),
            ("action", Text(action)),
            ("parameters", Text(parameters)),
            ("run_at", Int(1)),
        ],
    ));
    rows.push((
        "portal_actions",
        vec![("portal_id", Int(1)), ("action_id", Int(1))],
    ));
    if model.door_drive() == DoorDrive::SecBox {
        rows.push((
            "sec_boxs",
            vec![
                ("id", Int(i128::from(DEFAULT_SEC_BOX_ID))),
                ("enabled", Int(1)),
                ("relay_timeout", Int(3000)),
                ("door_sensor_enabled", Int(0)),
                ("door_sensor_idle", Int(0)),
                ("auto_close_enabled", Int(0)),
            ],
        ));
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_foreign_key_names_a_known_table_and_column() {
        for t in TABLES {
            for fk in t.foreign_keys {
                assert!(table_def(fk.references).is_some(), "{}", fk.references);
                assert!(t.columns.iter().any(|c| c.name == fk.column));
            }
            for set in t.unique {
                for col in *set {
                    assert!(t.columns.iter().any(|c| c.name == *col), "{col}");
                }
            }
        }
    }

    #[test]
    fn table_names_are_unique() {
        let mut names: Vec<_> = TABLES.iter().map(|t| t.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), TABLES.len());
    }
}
