//! The registry's in-memory state: schemas by global id, subjects with their versions,
//! and compatibility levels. Every operation a route performs lives here.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use apache_avro::Schema;
use event_bus_core::schema::compat::CompatibilityLevel;
use serde::Serialize;

use super::compatibility::{self, DEFAULT_LEVEL};
use super::errors::RegistryError;
use super::schema::{parse_avro, ParsedSchema};

/// The in-memory state of an embedded registry, shared by its HTTP routes.
///
/// Cloning is cheap and clones share the state. Ids are global and start at 1; a schema
/// keeps its id forever (even after its subjects are deleted), so bytes framed with it
/// stay decodable.
///
/// # Example
///
/// ```
/// use event_bus_testkit::registry::SchemaStore;
///
/// let store = SchemaStore::new();
/// let schema = r#"{"type":"record","name":"Ping","fields":[{"name":"n","type":"long"}]}"#;
/// let id = store.register("pings-value", schema)?;
/// assert_eq!(id, 1);
/// // The same schema under another subject keeps its global id.
/// assert_eq!(store.register("other-value", schema)?, 1);
/// # Ok::<(), event_bus_testkit::registry::RegistryError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct SchemaStore {
    inner: Arc<RwLock<Inner>>,
}

/// A schema as registered under a subject: the body of
/// `GET /subjects/{subject}/versions/{version}`.
///
/// # Example
///
/// ```
/// use event_bus_testkit::registry::SchemaStore;
///
/// let store = SchemaStore::new();
/// let registered = store.register_with_id("pings-value", r#""string""#, 42)?;
/// assert_eq!((registered.version, registered.id), (1, 42));
/// assert_eq!(registered.schema, r#""string""#);
/// # Ok::<(), event_bus_testkit::registry::RegistryError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SubjectVersion {
    /// The subject.
    pub subject: String,
    /// The version under the subject (1-based).
    pub version: u32,
    /// The schema's global id.
    pub id: u32,
    /// The schema text as first registered.
    pub schema: String,
}

/// A version path segment: a number, or `latest` (also spelled `-1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VersionSelector {
    Latest,
    Number(u32),
}

impl VersionSelector {
    /// Parses `latest`, `-1` or a number in `1..=2^31-1`; anything else is 42202.
    pub(crate) fn parse(given: &str) -> Result<Self, RegistryError> {
        if given.eq_ignore_ascii_case("latest") || given == "-1" {
            return Ok(Self::Latest);
        }
        match given.parse::<i32>() {
            Ok(number) if number >= 1 => {
                u32::try_from(number)
                    .map(Self::Number)
                    .map_err(|_| RegistryError::InvalidVersion {
                        given: given.to_owned(),
                    })
            }
            _ => Err(RegistryError::InvalidVersion {
                given: given.to_owned(),
            }),
        }
    }
}

#[derive(Debug)]
struct StoredSchema {
    text: String,
    identity: String,
    schema: Schema,
}

#[derive(Debug, Clone, Copy)]
struct VersionEntry {
    version: u32,
    id: u32,
    deleted: bool,
}

#[derive(Debug)]
struct Inner {
    schemas: BTreeMap<u32, StoredSchema>,
    ids_by_identity: HashMap<String, u32>,
    subjects: BTreeMap<String, Vec<VersionEntry>>,
    global_level: Option<CompatibilityLevel>,
    subject_levels: BTreeMap<String, CompatibilityLevel>,
    next_id: u32,
}

impl Default for Inner {
    fn default() -> Self {
        Self {
            schemas: BTreeMap::new(),
            ids_by_identity: HashMap::new(),
            subjects: BTreeMap::new(),
            global_level: None,
            subject_levels: BTreeMap::new(),
            next_id: 1,
        }
    }
}

impl Inner {
    fn entries(&self, subject: &str, include_deleted: bool) -> Vec<VersionEntry> {
        self.subjects
            .get(subject)
            .map(|entries| {
                entries
                    .iter()
                    .filter(|entry| include_deleted || !entry.deleted)
                    .copied()
                    .collect()
            })
            .unwrap_or_default()
    }

    fn stored(&self, id: u32) -> Result<&StoredSchema, RegistryError> {
        self.schemas.get(&id).ok_or_else(|| RegistryError::Store {
            detail: format!("a subject version points at schema id {id}, which is missing"),
        })
    }

    fn subject_version(
        &self,
        subject: &str,
        entry: VersionEntry,
    ) -> Result<SubjectVersion, RegistryError> {
        Ok(SubjectVersion {
            subject: subject.to_owned(),
            version: entry.version,
            id: entry.id,
            schema: self.stored(entry.id)?.text.clone(),
        })
    }

    fn effective_level(&self, subject: &str) -> CompatibilityLevel {
        self.subject_levels
            .get(subject)
            .copied()
            .unwrap_or_else(|| self.global_level.unwrap_or(DEFAULT_LEVEL))
    }

    /// Runs the subject's compatibility check of `new` against `entries` (oldest first).
    fn check_against(
        &self,
        subject: &str,
        new: &Schema,
        entries: &[VersionEntry],
    ) -> Result<Vec<String>, RegistryError> {
        let mut existing = Vec::with_capacity(entries.len());
        for entry in entries {
            existing.push((entry.version, &self.stored(entry.id)?.schema));
        }
        compatibility::check(self.effective_level(subject), new, &existing)
    }

    /// Stores `parsed` under a fresh id, or returns the id it already has.
    fn id_for(&mut self, parsed: ParsedSchema, text: &str) -> Result<u32, RegistryError> {
        if let Some(id) = self.ids_by_identity.get(&parsed.identity) {
            return Ok(*id);
        }
        let id = self.next_id;
        self.next_id = id.checked_add(1).ok_or_else(|| RegistryError::Store {
            detail: "schema ids are exhausted".into(),
        })?;
        self.ids_by_identity.insert(parsed.identity.clone(), id);
        self.schemas.insert(
            id,
            StoredSchema {
                text: text.to_owned(),
                identity: parsed.identity,
                schema: parsed.schema,
            },
        );
        Ok(id)
    }

    /// Appends a new version for `id` under `subject`; version numbers never repeat, even
    /// after deletes.
    fn append_version(&mut self, subject: &str, id: u32) -> VersionEntry {
        let entries = self.subjects.entry(subject.to_owned()).or_default();
        let version = entries
            .iter()
            .map(|entry| entry.version)
            .max()
            .unwrap_or(0)
            .saturating_add(1);
        let entry = VersionEntry {
            version,
            id,
            deleted: false,
        };
        entries.push(entry);
        entry
    }
}

impl SchemaStore {
    /// An empty store: no subjects, global level `BACKWARD`, next id 1.
    ///
    /// ```
    /// use event_bus_testkit::registry::SchemaStore;
    ///
    /// let store = SchemaStore::new();
    /// # let _ = store;
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> Result<RwLockReadGuard<'_, Inner>, RegistryError> {
        self.inner.read().map_err(|_| poisoned())
    }

    fn write(&self) -> Result<RwLockWriteGuard<'_, Inner>, RegistryError> {
        self.inner.write().map_err(|_| poisoned())
    }

    /// Registers `schema` (Avro JSON text) under `subject`, exactly as
    /// `POST /subjects/{subject}/versions` does, and returns its global id.
    ///
    /// The same schema (see the module docs on identity) already live under the subject
    /// returns its id without a new version; a schema known under another subject reuses
    /// that id. Otherwise the schema must pass the subject's effective compatibility level
    /// against the subject's live versions.
    ///
    /// # Errors
    ///
    /// [`RegistryError::InvalidSchema`] (422/42201) and [`RegistryError::Incompatible`]
    /// (409).
    ///
    /// # Example
    ///
    /// ```
    /// use event_bus_testkit::registry::{RegistryError, SchemaStore};
    ///
    /// let store = SchemaStore::new();
    /// let v1 = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"string"}]}"#;
    /// let v2 = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"string"},{"name":"b","type":"string"}]}"#;
    /// assert_eq!(store.register("r-value", v1)?, 1);
    /// // BACKWARD (the default) refuses a new field without a default.
    /// let refused = store.register("r-value", v2);
    /// assert!(matches!(refused, Err(RegistryError::Incompatible { .. })));
    /// # Ok::<(), RegistryError>(())
    /// ```
    pub fn register(&self, subject: &str, schema: &str) -> Result<u32, RegistryError> {
        let parsed = parse_avro(schema)?;
        let mut inner = self.write()?;
        let live = inner.entries(subject, false);
        for entry in &live {
            if inner.stored(entry.id)?.identity == parsed.identity {
                return Ok(entry.id);
            }
        }
        let reasons = inner.check_against(subject, &parsed.schema, &live)?;
        if !reasons.is_empty() {
            return Err(RegistryError::Incompatible {
                subject: subject.to_owned(),
                reasons,
            });
        }
        let id = inner.id_for(parsed, schema)?;
        inner.append_version(subject, id);
        tracing::debug!(subject, id, "embedded registry registered a schema");
        Ok(id)
    }

    /// Registers `schema` under `subject` with the given global `id`, skipping the
    /// compatibility check, like Confluent's IMPORT mode. For tests that must serve bytes
    /// framed with a known id (e.g. Open edX's published wire vectors use id 100019).
    ///
    /// Idempotent: if `id` already holds this schema and the subject's latest live version
    /// is it, that version is returned. Later automatic ids continue after the largest id.
    ///
    /// # Errors
    ///
    /// [`RegistryError::InvalidSchema`] for bad text or id 0, and
    /// [`RegistryError::IdConflict`] when `id` already holds a different schema.
    ///
    /// # Example
    ///
    /// ```
    /// use event_bus_testkit::registry::SchemaStore;
    ///
    /// let store = SchemaStore::new();
    /// let schema = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"string"}]}"#;
    /// let registered = store.register_with_id("r-value", schema, 100019)?;
    /// assert_eq!(registered.id, 100019);
    /// // Automatic ids continue after it.
    /// assert_eq!(store.register("other-value", r#""long""#)?, 100020);
    /// # Ok::<(), event_bus_testkit::registry::RegistryError>(())
    /// ```
    pub fn register_with_id(
        &self,
        subject: &str,
        schema: &str,
        id: u32,
    ) -> Result<SubjectVersion, RegistryError> {
        if id == 0 {
            return Err(RegistryError::InvalidSchema {
                reason: "schema id 0 is not valid; ids start at 1".into(),
            });
        }
        let parsed = parse_avro(schema)?;
        let mut inner = self.write()?;
        match inner.schemas.get(&id) {
            Some(existing) if existing.identity != parsed.identity => {
                return Err(RegistryError::IdConflict { id });
            }
            Some(_) => {}
            None => {
                inner
                    .ids_by_identity
                    .entry(parsed.identity.clone())
                    .or_insert(id);
                inner.schemas.insert(
                    id,
                    StoredSchema {
                        text: schema.to_owned(),
                        identity: parsed.identity,
                        schema: parsed.schema,
                    },
                );
                let after = id.saturating_add(1);
                if after > inner.next_id {
                    inner.next_id = after;
                }
            }
        }
        let latest = inner.entries(subject, false).last().copied();
        let entry = match latest {
            Some(entry) if entry.id == id => entry,
            _ => inner.append_version(subject, id),
        };
        inner.subject_version(subject, entry)
    }

    /// Sets the global compatibility level (what `PUT /config` does).
    ///
    /// ```
    /// use event_bus_core::schema::compat::CompatibilityLevel;
    /// use event_bus_testkit::registry::SchemaStore;
    ///
    /// let store = SchemaStore::new();
    /// store.set_global_compatibility(CompatibilityLevel::FullTransitive)?;
    /// # Ok::<(), event_bus_testkit::registry::RegistryError>(())
    /// ```
    pub fn set_global_compatibility(&self, level: CompatibilityLevel) -> Result<(), RegistryError> {
        self.write()?.global_level = Some(level);
        Ok(())
    }

    /// Sets a subject's compatibility level (what `PUT /config/{subject}` does). The
    /// subject need not exist yet.
    ///
    /// ```
    /// use event_bus_core::schema::compat::CompatibilityLevel;
    /// use event_bus_testkit::registry::SchemaStore;
    ///
    /// let store = SchemaStore::new();
    /// store.set_subject_compatibility("orders-value", CompatibilityLevel::None)?;
    /// # Ok::<(), event_bus_testkit::registry::RegistryError>(())
    /// ```
    pub fn set_subject_compatibility(
        &self,
        subject: &str,
        level: CompatibilityLevel,
    ) -> Result<(), RegistryError> {
        self.write()?
            .subject_levels
            .insert(subject.to_owned(), level);
        Ok(())
    }

    /// The global level (`BACKWARD` unless set).
    pub(crate) fn global_compatibility(&self) -> Result<CompatibilityLevel, RegistryError> {
        Ok(self.read()?.global_level.unwrap_or(DEFAULT_LEVEL))
    }

    /// Resets the global level to the default and returns the one it replaces.
    pub(crate) fn reset_global_compatibility(&self) -> Result<CompatibilityLevel, RegistryError> {
        let mut inner = self.write()?;
        Ok(inner.global_level.take().unwrap_or(DEFAULT_LEVEL))
    }

    /// The subject's own level, if it has one.
    pub(crate) fn subject_compatibility(
        &self,
        subject: &str,
    ) -> Result<Option<CompatibilityLevel>, RegistryError> {
        Ok(self.read()?.subject_levels.get(subject).copied())
    }

    /// Removes the subject's own level and returns it; 40401 if it had none (as Confluent).
    pub(crate) fn delete_subject_compatibility(
        &self,
        subject: &str,
    ) -> Result<CompatibilityLevel, RegistryError> {
        self.write()?
            .subject_levels
            .remove(subject)
            .ok_or_else(|| RegistryError::SubjectNotFound {
                subject: subject.to_owned(),
            })
    }

    /// `POST /subjects/{subject}`: the version under which this schema is registered.
    pub(crate) fn lookup(
        &self,
        subject: &str,
        schema: &str,
        include_deleted: bool,
    ) -> Result<SubjectVersion, RegistryError> {
        let inner = self.read()?;
        let entries = inner.entries(subject, include_deleted);
        if entries.is_empty() {
            return Err(RegistryError::SubjectNotFound {
                subject: subject.to_owned(),
            });
        }
        let parsed = parse_avro(schema)?;
        for entry in entries.iter().rev() {
            if inner.stored(entry.id)?.identity == parsed.identity {
                return inner.subject_version(subject, *entry);
            }
        }
        Err(RegistryError::SchemaNotFound)
    }

    /// `GET /subjects`: subjects with a live version (or any version with `include_deleted`).
    pub(crate) fn subjects(&self, include_deleted: bool) -> Result<Vec<String>, RegistryError> {
        let inner = self.read()?;
        Ok(inner
            .subjects
            .iter()
            .filter(|(_, entries)| {
                entries
                    .iter()
                    .any(|entry| include_deleted || !entry.deleted)
            })
            .map(|(subject, _)| subject.clone())
            .collect())
    }

    /// `GET /subjects/{subject}/versions`.
    pub(crate) fn versions(
        &self,
        subject: &str,
        include_deleted: bool,
    ) -> Result<Vec<u32>, RegistryError> {
        let entries = self.read()?.entries(subject, include_deleted);
        if entries.is_empty() {
            return Err(RegistryError::SubjectNotFound {
                subject: subject.to_owned(),
            });
        }
        Ok(entries.iter().map(|entry| entry.version).collect())
    }

    /// `GET /subjects/{subject}/versions/{version}`.
    pub(crate) fn version(
        &self,
        subject: &str,
        selector: VersionSelector,
        include_deleted: bool,
    ) -> Result<SubjectVersion, RegistryError> {
        let inner = self.read()?;
        let entries = inner.entries(subject, include_deleted);
        let entry = match selector {
            VersionSelector::Latest => entries.last().copied(),
            VersionSelector::Number(number) => {
                if entries.is_empty() {
                    None
                } else {
                    let found = entries.iter().find(|entry| entry.version == number);
                    Some(*found.ok_or(RegistryError::VersionNotFound { version: number })?)
                }
            }
        };
        let entry = entry.ok_or_else(|| RegistryError::SubjectNotFound {
            subject: subject.to_owned(),
        })?;
        inner.subject_version(subject, entry)
    }

    /// `GET /schemas/ids/{id}`: the schema text.
    pub(crate) fn schema_text(&self, id: u32) -> Result<String, RegistryError> {
        self.read()?
            .schemas
            .get(&id)
            .map(|stored| stored.text.clone())
            .ok_or(RegistryError::SchemaIdNotFound { id })
    }

    /// `GET /schemas/ids/{id}/versions`: every (subject, version) holding the id.
    pub(crate) fn subject_versions_of(
        &self,
        id: u32,
        include_deleted: bool,
    ) -> Result<Vec<(String, u32)>, RegistryError> {
        let inner = self.read()?;
        if !inner.schemas.contains_key(&id) {
            return Err(RegistryError::SchemaIdNotFound { id });
        }
        Ok(inner
            .subjects
            .iter()
            .flat_map(|(subject, entries)| {
                entries
                    .iter()
                    .filter(move |entry| entry.id == id && (include_deleted || !entry.deleted))
                    .map(move |entry| (subject.clone(), entry.version))
            })
            .collect())
    }

    /// `POST /compatibility/subjects/{subject}/versions[/{version}]`: problems with
    /// `schema` (none when compatible). With a selector the check is against that one live
    /// version (`latest` of a subject without versions is compatible); without one, against
    /// the subject's live versions as registration would check.
    pub(crate) fn check(
        &self,
        subject: &str,
        schema: &str,
        selector: Option<VersionSelector>,
    ) -> Result<Vec<String>, RegistryError> {
        let inner = self.read()?;
        let live = inner.entries(subject, false);
        let against: Vec<VersionEntry> = match selector {
            None => live,
            Some(VersionSelector::Latest) => live.last().copied().into_iter().collect(),
            Some(VersionSelector::Number(number)) => {
                let found = live.iter().find(|entry| entry.version == number);
                vec![*found.ok_or(RegistryError::VersionNotFound { version: number })?]
            }
        };
        let parsed = parse_avro(schema)?;
        inner.check_against(subject, &parsed.schema, &against)
    }

    /// `DELETE /subjects/{subject}`: soft-deletes every live version, or with `permanent`
    /// removes a soft-deleted subject (and its config). Returns the versions deleted.
    pub(crate) fn delete_subject(
        &self,
        subject: &str,
        permanent: bool,
    ) -> Result<Vec<u32>, RegistryError> {
        let mut inner = self.write()?;
        let not_found = || RegistryError::SubjectNotFound {
            subject: subject.to_owned(),
        };
        let entries = inner.subjects.get_mut(subject).ok_or_else(not_found)?;
        if entries.is_empty() {
            return Err(not_found());
        }
        let has_live = entries.iter().any(|entry| !entry.deleted);
        if permanent {
            if has_live {
                return Err(RegistryError::SubjectNotSoftDeleted {
                    subject: subject.to_owned(),
                });
            }
            let versions = entries.iter().map(|entry| entry.version).collect();
            inner.subjects.remove(subject);
            inner.subject_levels.remove(subject);
            return Ok(versions);
        }
        if !has_live {
            return Err(RegistryError::SubjectSoftDeleted {
                subject: subject.to_owned(),
            });
        }
        let mut versions = Vec::new();
        for entry in entries.iter_mut().filter(|entry| !entry.deleted) {
            entry.deleted = true;
            versions.push(entry.version);
        }
        Ok(versions)
    }

    /// `DELETE /subjects/{subject}/versions/{version}`: soft-deletes a live version, or
    /// with `permanent` removes a soft-deleted one. Returns the version number.
    pub(crate) fn delete_version(
        &self,
        subject: &str,
        selector: VersionSelector,
        permanent: bool,
    ) -> Result<u32, RegistryError> {
        let mut inner = self.write()?;
        let not_found = || RegistryError::SubjectNotFound {
            subject: subject.to_owned(),
        };
        let entries = inner.subjects.get_mut(subject).ok_or_else(not_found)?;
        let position = match selector {
            VersionSelector::Latest if permanent => entries.len().checked_sub(1),
            VersionSelector::Latest => entries.iter().rposition(|entry| !entry.deleted),
            VersionSelector::Number(number) => {
                if entries.is_empty() {
                    None
                } else {
                    Some(
                        entries
                            .iter()
                            .position(|entry| entry.version == number)
                            .ok_or(RegistryError::VersionNotFound { version: number })?,
                    )
                }
            }
        };
        let position = position.ok_or_else(not_found)?;
        let entry = entries
            .get_mut(position)
            .ok_or_else(|| RegistryError::Store {
                detail: "a version vanished while it was being deleted".into(),
            })?;
        let version = entry.version;
        if permanent {
            if !entry.deleted {
                return Err(RegistryError::VersionNotSoftDeleted {
                    subject: subject.to_owned(),
                    version,
                });
            }
            entries.remove(position);
            if entries.is_empty() {
                inner.subjects.remove(subject);
            }
        } else {
            if entry.deleted {
                return Err(RegistryError::VersionSoftDeleted {
                    subject: subject.to_owned(),
                    version,
                });
            }
            entry.deleted = true;
        }
        Ok(version)
    }
}

fn poisoned() -> RegistryError {
    RegistryError::Store {
        detail: "the registry's state lock is poisoned (a request panicked)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_selectors_parse_like_confluent() {
        assert_eq!(
            VersionSelector::parse("latest").ok(),
            Some(VersionSelector::Latest)
        );
        assert_eq!(
            VersionSelector::parse("-1").ok(),
            Some(VersionSelector::Latest)
        );
        assert_eq!(
            VersionSelector::parse("3").ok(),
            Some(VersionSelector::Number(3))
        );
        for bad in ["0", "-2", "abc", "2147483648", ""] {
            assert!(
                matches!(
                    VersionSelector::parse(bad),
                    Err(RegistryError::InvalidVersion { .. })
                ),
                "{bad}"
            );
        }
    }
}
