//! An in-memory data model: the four Modbus tables, FIFO queues, files and device
//! identification, behind one lock so a server thread and the application can share it.
//!
//! Every request is served under a single lock acquisition, so a multi-register write is atomic:
//! no reader, on the bus or in the application, ever sees half of it. Address checks are done in
//! `usize` (`start + quantity` cannot wrap) and answer exception 02 beyond a table's size.

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::vec::Vec;

use crate::pdu::{Coils, ExceptionCode, MAX_FIFO_COUNT, Registers};
use crate::session::server::{Handler, MAX_DEVICE_ID_OBJECT_LEN, Unit, UnitIds};

/// The tables themselves; always accessed under the [`DataStore`] lock.
#[derive(Debug, Clone, Default)]
struct Tables {
    coils: Vec<bool>,
    discrete_inputs: Vec<bool>,
    holding_registers: Vec<u16>,
    input_registers: Vec<u16>,
    fifo_queues: BTreeMap<u16, Vec<u16>>,
    files: BTreeMap<u16, Vec<u16>>,
    device_identification: BTreeMap<u8, Vec<u8>>,
    exception_status: u8,
    server_id: Option<Vec<u8>>,
}

/// The index range `address..address + quantity` of a table of `len` entries, or exception 02.
fn span(
    len: usize,
    address: u16,
    quantity: usize,
) -> Result<core::ops::Range<usize>, ExceptionCode> {
    let start = usize::from(address);
    let end = start
        .checked_add(quantity)
        .ok_or(ExceptionCode::IllegalDataAddress)?;
    if end > len {
        return Err(ExceptionCode::IllegalDataAddress);
    }
    Ok(start..end)
}

fn read_into<T: Copy>(table: &[T], address: u16, out: &mut [T]) -> Result<(), ExceptionCode> {
    let values = table
        .get(span(table.len(), address, out.len())?)
        .ok_or(ExceptionCode::IllegalDataAddress)?;
    out.copy_from_slice(values);
    Ok(())
}

fn write_from<T: Copy>(table: &mut [T], address: u16, values: &[T]) -> Result<(), ExceptionCode> {
    let range = span(table.len(), address, values.len())?;
    table
        .get_mut(range)
        .ok_or(ExceptionCode::IllegalDataAddress)?
        .copy_from_slice(values);
    Ok(())
}

fn write_coils(table: &mut [bool], address: u16, values: Coils<'_>) -> Result<(), ExceptionCode> {
    let range = span(table.len(), address, values.len())?;
    let slots = table
        .get_mut(range)
        .ok_or(ExceptionCode::IllegalDataAddress)?;
    values.copy_to(slots);
    Ok(())
}

fn write_registers(
    table: &mut [u16],
    address: u16,
    values: Registers<'_>,
) -> Result<(), ExceptionCode> {
    let range = span(table.len(), address, values.len())?;
    let slots = table
        .get_mut(range)
        .ok_or(ExceptionCode::IllegalDataAddress)?;
    values.copy_to(slots);
    Ok(())
}

/// An in-memory Modbus data model shared between threads: a handle, whose clones all reach the
/// same tables.
///
/// It is a [`Handler`], so servers answer from it directly (each TCP connection with a clone);
/// the application reads and writes the same tables with the inherent methods, including the
/// read-only discrete inputs and input registers a client cannot write.
///
/// ```
/// use modbus_stack::server::DataStore;
/// use modbus_stack::session::server::{PduServer, Reply};
///
/// let store = DataStore::builder().holding_registers(100).build();
/// let mut server = PduServer::serial(1);
/// let mut out = [0u8; 253];
/// // FC 16: write 0x000A, 0x0102 at 1.
/// let request = [0x10, 0x00, 0x01, 0x00, 0x02, 0x04, 0x00, 0x0A, 0x01, 0x02];
/// assert_eq!(server.respond(1, &request, &mut store.clone(), &mut out), Reply::Send(5));
/// assert_eq!(store.holding_registers(1, 2), Ok(vec![0x000A, 0x0102]));
/// ```
#[derive(Debug, Clone, Default)]
pub struct DataStore {
    tables: Arc<RwLock<Tables>>,
}

/// Builds a [`DataStore`]: table sizes, FIFO queues, files and identification objects.
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct DataStoreBuilder {
    tables: Tables,
}

impl DataStoreBuilder {
    /// `count` coils (addresses `0..count`), all off.
    pub fn coils(mut self, count: usize) -> Self {
        self.tables.coils = std::vec![false; count.min(0x1_0000)];
        self
    }

    /// `count` discrete inputs, all off.
    pub fn discrete_inputs(mut self, count: usize) -> Self {
        self.tables.discrete_inputs = std::vec![false; count.min(0x1_0000)];
        self
    }

    /// `count` holding registers, all zero.
    pub fn holding_registers(mut self, count: usize) -> Self {
        self.tables.holding_registers = std::vec![0; count.min(0x1_0000)];
        self
    }

    /// `count` input registers, all zero.
    pub fn input_registers(mut self, count: usize) -> Self {
        self.tables.input_registers = std::vec![0; count.min(0x1_0000)];
        self
    }

    /// A FIFO queue FC 24 reads at pointer address `address`, oldest value first.
    pub fn fifo_queue(mut self, address: u16, values: impl Into<Vec<u16>>) -> Self {
        self.tables.fifo_queues.insert(address, values.into());
        self
    }

    /// File `file_number` (1–65535) with `records` zeroed 16-bit records (at most 10 000).
    pub fn file(mut self, file_number: u16, records: usize) -> Self {
        self.tables
            .files
            .insert(file_number, std::vec![0; records.min(10_000)]);
        self
    }

    /// Device identification object `id` (FC 43/14), cut to 244 bytes. Objects 0x00–0x02
    /// (vendor name, product code, revision) are mandatory once any object is set.
    pub fn device_identification(mut self, id: u8, value: impl AsRef<[u8]>) -> Self {
        let value = value.as_ref();
        let value = value.get(..MAX_DEVICE_ID_OBJECT_LEN).unwrap_or(value);
        self.tables.device_identification.insert(id, value.to_vec());
        self
    }

    /// The eight exception status outputs FC 07 returns.
    pub fn exception_status(mut self, status: u8) -> Self {
        self.tables.exception_status = status;
        self
    }

    /// The bytes FC 17 returns (server id, run indicator, additional data), cut to 251 bytes.
    pub fn server_id(mut self, data: impl AsRef<[u8]>) -> Self {
        let data = data.as_ref();
        self.tables.server_id = Some(data.get(..251).unwrap_or(data).to_vec());
        self
    }

    /// The store.
    #[must_use]
    pub fn build(self) -> DataStore {
        DataStore {
            tables: Arc::new(RwLock::new(self.tables)),
        }
    }
}

impl DataStore {
    /// A builder for a store; without calls every table is empty.
    pub fn builder() -> DataStoreBuilder {
        DataStoreBuilder::default()
    }

    // Nothing panics while holding the lock, but a poisoned lock still holds consistent
    // tables (each write is one copy), so recover rather than fail every later request.
    fn read(&self) -> RwLockReadGuard<'_, Tables> {
        self.tables.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Tables> {
        self.tables.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// `quantity` coils from `address`.
    ///
    /// # Errors
    /// [`ExceptionCode::IllegalDataAddress`] beyond the table.
    pub fn coils(&self, address: u16, quantity: usize) -> Result<Vec<bool>, ExceptionCode> {
        let mut out = std::vec![false; quantity];
        read_into(&self.read().coils, address, &mut out)?;
        Ok(out)
    }

    /// Writes coils from `address`, atomically.
    ///
    /// # Errors
    /// [`ExceptionCode::IllegalDataAddress`] beyond the table (nothing is written).
    pub fn write_coils(&self, address: u16, values: &[bool]) -> Result<(), ExceptionCode> {
        write_from(&mut self.write().coils, address, values)
    }

    /// `quantity` discrete inputs from `address`.
    ///
    /// # Errors
    /// [`ExceptionCode::IllegalDataAddress`] beyond the table.
    pub fn discrete_inputs(
        &self,
        address: u16,
        quantity: usize,
    ) -> Result<Vec<bool>, ExceptionCode> {
        let mut out = std::vec![false; quantity];
        read_into(&self.read().discrete_inputs, address, &mut out)?;
        Ok(out)
    }

    /// Writes discrete inputs from `address` (the application side of a read-only table).
    ///
    /// # Errors
    /// [`ExceptionCode::IllegalDataAddress`] beyond the table (nothing is written).
    pub fn write_discrete_inputs(
        &self,
        address: u16,
        values: &[bool],
    ) -> Result<(), ExceptionCode> {
        write_from(&mut self.write().discrete_inputs, address, values)
    }

    /// `quantity` holding registers from `address`.
    ///
    /// # Errors
    /// [`ExceptionCode::IllegalDataAddress`] beyond the table.
    pub fn holding_registers(
        &self,
        address: u16,
        quantity: usize,
    ) -> Result<Vec<u16>, ExceptionCode> {
        let mut out = std::vec![0; quantity];
        read_into(&self.read().holding_registers, address, &mut out)?;
        Ok(out)
    }

    /// Writes holding registers from `address`, atomically.
    ///
    /// # Errors
    /// [`ExceptionCode::IllegalDataAddress`] beyond the table (nothing is written).
    pub fn write_holding_registers(
        &self,
        address: u16,
        values: &[u16],
    ) -> Result<(), ExceptionCode> {
        write_from(&mut self.write().holding_registers, address, values)
    }

    /// `quantity` input registers from `address`.
    ///
    /// # Errors
    /// [`ExceptionCode::IllegalDataAddress`] beyond the table.
    pub fn input_registers(
        &self,
        address: u16,
        quantity: usize,
    ) -> Result<Vec<u16>, ExceptionCode> {
        let mut out = std::vec![0; quantity];
        read_into(&self.read().input_registers, address, &mut out)?;
        Ok(out)
    }

    /// Writes input registers from `address` (the application side of a read-only table).
    ///
    /// # Errors
    /// [`ExceptionCode::IllegalDataAddress`] beyond the table (nothing is written).
    pub fn write_input_registers(&self, address: u16, values: &[u16]) -> Result<(), ExceptionCode> {
        write_from(&mut self.write().input_registers, address, values)
    }

    /// Replaces the FIFO queue at pointer address `address`.
    pub fn write_fifo_queue(&self, address: u16, values: impl Into<Vec<u16>>) {
        self.write().fifo_queues.insert(address, values.into());
    }

    /// The records of file `file_number` (a copy), if the file exists.
    #[must_use]
    pub fn file(&self, file_number: u16) -> Option<Vec<u16>> {
        self.read().files.get(&file_number).cloned()
    }
}

impl Handler for DataStore {
    fn read_coils(&mut self, _: Unit, address: u16, out: &mut [bool]) -> Result<(), ExceptionCode> {
        read_into(&self.read().coils, address, out)
    }

    fn read_discrete_inputs(
        &mut self,
        _: Unit,
        address: u16,
        out: &mut [bool],
    ) -> Result<(), ExceptionCode> {
        read_into(&self.read().discrete_inputs, address, out)
    }

    fn read_holding_registers(
        &mut self,
        _: Unit,
        address: u16,
        out: &mut [u16],
    ) -> Result<(), ExceptionCode> {
        read_into(&self.read().holding_registers, address, out)
    }

    fn read_input_registers(
        &mut self,
        _: Unit,
        address: u16,
        out: &mut [u16],
    ) -> Result<(), ExceptionCode> {
        read_into(&self.read().input_registers, address, out)
    }

    fn write_single_coil(
        &mut self,
        _: Unit,
        address: u16,
        value: bool,
    ) -> Result<(), ExceptionCode> {
        write_from(&mut self.write().coils, address, &[value])
    }

    fn write_single_register(
        &mut self,
        _: Unit,
        address: u16,
        value: u16,
    ) -> Result<(), ExceptionCode> {
        write_from(&mut self.write().holding_registers, address, &[value])
    }

    fn write_multiple_coils(
        &mut self,
        _: Unit,
        address: u16,
        values: Coils<'_>,
    ) -> Result<(), ExceptionCode> {
        write_coils(&mut self.write().coils, address, values)
    }

    fn write_multiple_registers(
        &mut self,
        _: Unit,
        address: u16,
        values: Registers<'_>,
    ) -> Result<(), ExceptionCode> {
        write_registers(&mut self.write().holding_registers, address, values)
    }

    fn mask_write_register(
        &mut self,
        _: Unit,
        address: u16,
        and_mask: u16,
        or_mask: u16,
    ) -> Result<(), ExceptionCode> {
        let mut tables = self.write();
        let register = tables
            .holding_registers
            .get_mut(usize::from(address))
            .ok_or(ExceptionCode::IllegalDataAddress)?;
        *register = (*register & and_mask) | (or_mask & !and_mask);
        Ok(())
    }

    fn read_write_multiple_registers(
        &mut self,
        _: Unit,
        read_address: u16,
        out: &mut [u16],
        write_address: u16,
        values: Registers<'_>,
    ) -> Result<(), ExceptionCode> {
        let mut tables = self.write();
        let table = &mut tables.holding_registers;
        // Both ranges are checked before anything is written: a failed request changes nothing.
        span(table.len(), read_address, out.len())?;
        write_registers(table, write_address, values)?;
        read_into(table, read_address, out)
    }

    fn read_fifo_queue(
        &mut self,
        _: Unit,
        address: u16,
        out: &mut [u16],
    ) -> Result<usize, ExceptionCode> {
        let tables = self.read();
        // Decision order of FC 24: pointer address (02) before the count (03).
        let queue = tables
            .fifo_queues
            .get(&address)
            .ok_or(ExceptionCode::IllegalDataAddress)?;
        if queue.len() > usize::from(MAX_FIFO_COUNT) {
            return Err(ExceptionCode::IllegalDataValue);
        }
        out.get_mut(..queue.len())
            .ok_or(ExceptionCode::IllegalDataValue)?
            .copy_from_slice(queue);
        Ok(queue.len())
    }

    fn read_file_record(
        &mut self,
        _: Unit,
        file_number: u16,
        record_number: u16,
        out: &mut [u16],
    ) -> Result<(), ExceptionCode> {
        let tables = self.read();
        let file = tables
            .files
            .get(&file_number)
            .ok_or(ExceptionCode::IllegalDataAddress)?;
        read_into(file, record_number, out)
    }

    fn write_file_record(
        &mut self,
        _: Unit,
        file_number: u16,
        record_number: u16,
        values: Registers<'_>,
    ) -> Result<(), ExceptionCode> {
        let mut tables = self.write();
        let file = tables
            .files
            .get_mut(&file_number)
            .ok_or(ExceptionCode::IllegalDataAddress)?;
        write_registers(file, record_number, values)
    }

    fn read_exception_status(&mut self, _: Unit) -> Result<u8, ExceptionCode> {
        Ok(self.read().exception_status)
    }

    fn report_server_id(&mut self, _: Unit, out: &mut [u8]) -> Result<usize, ExceptionCode> {
        let tables = self.read();
        let data = tables
            .server_id
            .as_deref()
            .ok_or(ExceptionCode::IllegalFunction)?;
        out.get_mut(..data.len())
            .ok_or(ExceptionCode::ServerDeviceFailure)?
            .copy_from_slice(data);
        Ok(data.len())
    }

    fn device_identification_conformity_level(&mut self, _: Unit) -> u8 {
        // Individual access always works; the category is that of the highest object id.
        match self.read().device_identification.keys().next_back() {
            Some(0x80..) => 0x83,
            Some(0x03..) => 0x82,
            _ => 0x81,
        }
    }

    fn read_device_identification(
        &mut self,
        _: Unit,
        object_id: u8,
        out: &mut [u8],
    ) -> Result<Option<usize>, ExceptionCode> {
        let tables = self.read();
        if tables.device_identification.is_empty() {
            return Err(ExceptionCode::IllegalFunction);
        }
        let Some(value) = tables.device_identification.get(&object_id) else {
            return Ok(None);
        };
        out.get_mut(..value.len())
            .ok_or(ExceptionCode::ServerDeviceFailure)?
            .copy_from_slice(value);
        Ok(Some(value.len()))
    }
}

/// A handler for several units: routes each unit id to its [`DataStore`], with optionally one
/// store for every unit id not mapped explicitly. A broadcast writes to every store.
///
/// Which unit ids a server answers is its session's decision
/// ([`ServerConfig::units`](crate::session::server::ServerConfig::units); [`unit_ids`](Self::unit_ids)
/// gives this map's). A request that passes it for a unit the map lacks is answered with
/// exception 0x0A (gateway path unavailable), as a gateway with no route answers.
///
/// ```
/// use modbus_stack::server::{DataStore, UnitMap};
/// use modbus_stack::session::server::{PduServer, Reply};
///
/// let meter = DataStore::builder().input_registers(10).build();
/// meter.write_input_registers(0, &[230]).unwrap();
/// let mut map = UnitMap::new();
/// map.insert(3, meter);
/// let mut server = PduServer::new(map.unit_ids(), true);
/// let mut out = [0u8; 253];
/// assert_eq!(server.respond(3, &[0x04, 0x00, 0x00, 0x00, 0x01], &mut map, &mut out), Reply::Send(4));
/// assert_eq!(&out[..4], &[0x04, 0x02, 0x00, 0xE6]);
/// ```
#[derive(Debug, Clone, Default)]
pub struct UnitMap {
    units: BTreeMap<u8, DataStore>,
    fallback: Option<DataStore>,
}

impl UnitMap {
    /// An empty map: no unit id is served.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// One store serving every unit id.
    #[must_use]
    pub fn serving_all(store: DataStore) -> Self {
        Self {
            units: BTreeMap::new(),
            fallback: Some(store),
        }
    }

    /// Serves `unit_id` from `store`, returning the store it replaces.
    pub fn insert(&mut self, unit_id: u8, store: DataStore) -> Option<DataStore> {
        self.units.insert(unit_id, store)
    }

    /// Serves every unit id not mapped explicitly from `store` (or from none).
    pub fn set_fallback(&mut self, store: Option<DataStore>) {
        self.fallback = store;
    }

    /// The store serving `unit_id`, if any.
    #[must_use]
    pub fn get(&self, unit_id: u8) -> Option<&DataStore> {
        self.units.get(&unit_id).or(self.fallback.as_ref())
    }

    /// The unit ids this map serves, for a session's
    /// [`ServerConfig::units`](crate::session::server::ServerConfig::units).
    #[must_use]
    pub fn unit_ids(&self) -> UnitIds {
        if self.fallback.is_some() {
            return UnitIds::all();
        }
        self.units
            .keys()
            .fold(UnitIds::none(), |ids, &unit_id| ids.with(unit_id))
    }

    /// Runs `call` on the store of `unit`, or on every store for a broadcast (reporting the
    /// first failure, for the counters only: a broadcast is never answered).
    fn route<R>(
        &mut self,
        unit: Unit,
        mut call: impl FnMut(&mut DataStore) -> Result<R, ExceptionCode>,
    ) -> Result<R, ExceptionCode> {
        match unit {
            Unit::Id(unit_id) => match self.units.get_mut(&unit_id) {
                Some(store) => call(store),
                None => call(
                    self.fallback
                        .as_mut()
                        .ok_or(ExceptionCode::GatewayPathUnavailable)?,
                ),
            },
            Unit::Broadcast => {
                let mut result: Option<Result<R, ExceptionCode>> = None;
                for store in self.units.values_mut().chain(self.fallback.as_mut()) {
                    let outcome = call(store);
                    if matches!((&result, &outcome), (None, _) | (Some(Ok(_)), Err(_))) {
                        result = Some(outcome);
                    }
                }
                result.unwrap_or(Err(ExceptionCode::GatewayPathUnavailable))
            }
        }
    }
}

impl Handler for UnitMap {
    fn read_coils(
        &mut self,
        unit: Unit,
        address: u16,
        out: &mut [bool],
    ) -> Result<(), ExceptionCode> {
        self.route(unit, |store| store.read_coils(unit, address, out))
    }

    fn read_discrete_inputs(
        &mut self,
        unit: Unit,
        address: u16,
        out: &mut [bool],
    ) -> Result<(), ExceptionCode> {
        self.route(unit, |store| store.read_discrete_inputs(unit, address, out))
    }

    fn read_holding_registers(
        &mut self,
        unit: Unit,
        address: u16,
        out: &mut [u16],
    ) -> Result<(), ExceptionCode> {
        self.route(unit, |store| {
            store.read_holding_registers(unit, address, out)
        })
    }

    fn read_input_registers(
        &mut self,
        unit: Unit,
        address: u16,
        out: &mut [u16],
    ) -> Result<(), ExceptionCode> {
        self.route(unit, |store| store.read_input_registers(unit, address, out))
    }

    fn write_single_coil(
        &mut self,
        unit: Unit,
        address: u16,
        value: bool,
    ) -> Result<(), ExceptionCode> {
        self.route(unit, |store| store.write_single_coil(unit, address, value))
    }

    fn write_single_register(
        &mut self,
        unit: Unit,
        address: u16,
        value: u16,
    ) -> Result<(), ExceptionCode> {
        self.route(unit, |store| {
            store.write_single_register(unit, address, value)
        })
    }

    fn write_multiple_coils(
        &mut self,
        unit: Unit,
        address: u16,
        values: Coils<'_>,
    ) -> Result<(), ExceptionCode> {
        self.route(unit, |store| {
            store.write_multiple_coils(unit, address, values)
        })
    }

    fn write_multiple_registers(
        &mut self,
        unit: Unit,
        address: u16,
        values: Registers<'_>,
    ) -> Result<(), ExceptionCode> {
        self.route(unit, |store| {
            store.write_multiple_registers(unit, address, values)
        })
    }

    fn mask_write_register(
        &mut self,
        unit: Unit,
        address: u16,
        and_mask: u16,
        or_mask: u16,
    ) -> Result<(), ExceptionCode> {
        self.route(unit, |store| {
            store.mask_write_register(unit, address, and_mask, or_mask)
        })
    }

    fn read_write_multiple_registers(
        &mut self,
        unit: Unit,
        read_address: u16,
        out: &mut [u16],
        write_address: u16,
        values: Registers<'_>,
    ) -> Result<(), ExceptionCode> {
        self.route(unit, |store| {
            store.read_write_multiple_registers(unit, read_address, out, write_address, values)
        })
    }

    fn read_fifo_queue(
        &mut self,
        unit: Unit,
        address: u16,
        out: &mut [u16],
    ) -> Result<usize, ExceptionCode> {
        self.route(unit, |store| store.read_fifo_queue(unit, address, out))
    }

    fn read_file_record(
        &mut self,
        unit: Unit,
        file_number: u16,
        record_number: u16,
        out: &mut [u16],
    ) -> Result<(), ExceptionCode> {
        self.route(unit, |store| {
            store.read_file_record(unit, file_number, record_number, out)
        })
    }

    fn write_file_record(
        &mut self,
        unit: Unit,
        file_number: u16,
        record_number: u16,
        values: Registers<'_>,
    ) -> Result<(), ExceptionCode> {
        self.route(unit, |store| {
            store.write_file_record(unit, file_number, record_number, values)
        })
    }

    fn read_exception_status(&mut self, unit: Unit) -> Result<u8, ExceptionCode> {
        self.route(unit, |store| store.read_exception_status(unit))
    }

    fn report_server_id(&mut self, unit: Unit, out: &mut [u8]) -> Result<usize, ExceptionCode> {
        self.route(unit, |store| store.report_server_id(unit, out))
    }

    fn device_identification_conformity_level(&mut self, unit: Unit) -> u8 {
        self.route(unit, |store| {
            Ok(store.device_identification_conformity_level(unit))
        })
        .unwrap_or(0x81)
    }

    fn read_device_identification(
        &mut self,
        unit: Unit,
        object_id: u8,
        out: &mut [u8],
    ) -> Result<Option<usize>, ExceptionCode> {
        self.route(unit, |store| {
            store.read_device_identification(unit, object_id, out)
        })
    }
}
