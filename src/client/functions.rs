//! One typed call per public function code, each a request built and its response
//! checked against it.

use super::{
    Client, CommEventCounter, CommEventLog, DeviceInfo, DiagnosticsReply, Error,
    MAX_DEVICE_ID_REQUESTS, Result, quantity,
};
use std::vec::Vec;

use crate::error::DecodeError;
use crate::pdu::{
    Coils, DiagnosticsRequest, FileReadGroup, FileReadGroups, FileRecord, FileRecords,
    FunctionCode, ReadDeviceIdCode, Registers, Request, Response,
};
use crate::transport::Transport;

impl<T: Transport> Client<T> {
    /// FC 01: reads `quantity` (1–2000) coils from `address`.
    ///
    /// # Errors
    /// Any [`Error`].
    pub fn read_coils(&mut self, unit_id: u8, address: u16, quantity: u16) -> Result<Vec<bool>> {
        let mut out = std::vec![false; usize::from(quantity)];
        self.read_bits(unit_id, &Request::ReadCoils { address, quantity }, &mut out)?;
        Ok(out)
    }

    /// FC 01 into `out`: reads `out.len()` coils from `address`, without allocating.
    ///
    /// # Errors
    /// Any [`Error`].
    pub fn read_coils_into(&mut self, unit_id: u8, address: u16, out: &mut [bool]) -> Result<()> {
        let quantity = quantity(out.len());
        self.read_bits(unit_id, &Request::ReadCoils { address, quantity }, out)
    }

    /// FC 02: reads `quantity` (1–2000) discrete inputs from `address`.
    ///
    /// # Errors
    /// Any [`Error`].
    pub fn read_discrete_inputs(
        &mut self,
        unit_id: u8,
        address: u16,
        quantity: u16,
    ) -> Result<Vec<bool>> {
        let mut out = std::vec![false; usize::from(quantity)];
        let request = Request::ReadDiscreteInputs { address, quantity };
        self.read_bits(unit_id, &request, &mut out)?;
        Ok(out)
    }

    /// FC 02 into `out`, without allocating.
    ///
    /// # Errors
    /// Any [`Error`].
    pub fn read_discrete_inputs_into(
        &mut self,
        unit_id: u8,
        address: u16,
        out: &mut [bool],
    ) -> Result<()> {
        let quantity = quantity(out.len());
        self.read_bits(
            unit_id,
            &Request::ReadDiscreteInputs { address, quantity },
            out,
        )
    }

    /// FC 03: reads `quantity` (1–125) holding registers from `address`.
    ///
    /// # Errors
    /// Any [`Error`].
    pub fn read_holding_registers(
        &mut self,
        unit_id: u8,
        address: u16,
        quantity: u16,
    ) -> Result<Vec<u16>> {
        let mut out = std::vec![0; usize::from(quantity)];
        let request = Request::ReadHoldingRegisters { address, quantity };
        self.read_words(unit_id, &request, &mut out)?;
        Ok(out)
    }

    /// FC 03 into `out`: reads `out.len()` holding registers, without allocating.
    ///
    /// # Errors
    /// Any [`Error`].
    pub fn read_holding_registers_into(
        &mut self,
        unit_id: u8,
        address: u16,
        out: &mut [u16],
    ) -> Result<()> {
        let quantity = quantity(out.len());
        self.read_words(
            unit_id,
            &Request::ReadHoldingRegisters { address, quantity },
            out,
        )
    }

    /// FC 04: reads `quantity` (1–125) input registers from `address`.
    ///
    /// # Errors
    /// Any [`Error`].
    pub fn read_input_registers(
        &mut self,
        unit_id: u8,
        address: u16,
        quantity: u16,
    ) -> Result<Vec<u16>> {
        let mut out = std::vec![0; usize::from(quantity)];
        let request = Request::ReadInputRegisters { address, quantity };
        self.read_words(unit_id, &request, &mut out)?;
        Ok(out)
    }

    /// FC 04 into `out`, without allocating.
    ///
    /// # Errors
    /// Any [`Error`].
    pub fn read_input_registers_into(
        &mut self,
        unit_id: u8,
        address: u16,
        out: &mut [u16],
    ) -> Result<()> {
        let quantity = quantity(out.len());
        self.read_words(
            unit_id,
            &Request::ReadInputRegisters { address, quantity },
            out,
        )
    }

    /// FC 01 or 02 into `out` (as long as the request's quantity). The response was decoded
    /// against `request`, so its function and count are the request's.
    fn read_bits(&mut self, unit_id: u8, request: &Request<'_>, out: &mut [bool]) -> Result<()> {
        self.expect(unit_id, request, |response| match response {
            Response::ReadCoils { values } | Response::ReadDiscreteInputs { values } => {
                values.copy_to(out);
                Some(())
            }
            _ => None,
        })
    }

    /// FC 03 or 04 into `out`, as [`read_bits`](Self::read_bits).
    fn read_words(&mut self, unit_id: u8, request: &Request<'_>, out: &mut [u16]) -> Result<()> {
        self.expect(unit_id, request, |response| match response {
            Response::ReadHoldingRegisters { values } | Response::ReadInputRegisters { values } => {
                values.copy_to(out);
                Some(())
            }
            _ => None,
        })
    }

    /// FC 05: switches one coil on or off.
    ///
    /// # Errors
    /// Any [`Error`].
    pub fn write_single_coil(&mut self, unit_id: u8, address: u16, value: bool) -> Result<()> {
        self.write(unit_id, &Request::WriteSingleCoil { address, value })
    }

    /// FC 06: writes one holding register.
    ///
    /// # Errors
    /// Any [`Error`].
    pub fn write_single_register(&mut self, unit_id: u8, address: u16, value: u16) -> Result<()> {
        self.write(unit_id, &Request::WriteSingleRegister { address, value })
    }

    /// FC 15: writes 1–1968 coils from `address`.
    ///
    /// # Errors
    /// Any [`Error`].
    pub fn write_multiple_coils(
        &mut self,
        unit_id: u8,
        address: u16,
        values: &[bool],
    ) -> Result<()> {
        let values = Coils::from_bools(values);
        self.write(unit_id, &Request::WriteMultipleCoils { address, values })
    }

    /// FC 16: writes 1–123 holding registers from `address`.
    ///
    /// # Errors
    /// Any [`Error`].
    pub fn write_multiple_registers(
        &mut self,
        unit_id: u8,
        address: u16,
        values: &[u16],
    ) -> Result<()> {
        let values = Registers::from_words(values);
        self.write(
            unit_id,
            &Request::WriteMultipleRegisters { address, values },
        )
    }

    /// FC 22: `register = (register & and_mask) | (or_mask & !and_mask)`.
    ///
    /// # Errors
    /// Any [`Error`].
    pub fn mask_write_register(
        &mut self,
        unit_id: u8,
        address: u16,
        and_mask: u16,
        or_mask: u16,
    ) -> Result<()> {
        let request = Request::MaskWriteRegister {
            address,
            and_mask,
            or_mask,
        };
        self.write(unit_id, &request)
    }

    /// FC 23: writes `values` (1–121) from `write_address`, then reads `read_quantity` (1–125)
    /// registers from `read_address`.
    ///
    /// # Errors
    /// Any [`Error`].
    pub fn read_write_multiple_registers(
        &mut self,
        unit_id: u8,
        read_address: u16,
        read_quantity: u16,
        write_address: u16,
        values: &[u16],
    ) -> Result<Vec<u16>> {
        let request = Request::ReadWriteMultipleRegisters {
            read_address,
            read_quantity,
            write_address,
            values: Registers::from_words(values),
        };
        self.expect(unit_id, &request, |response| match response {
            Response::ReadWriteMultipleRegisters { values } => Some(values.iter().collect()),
            _ => None,
        })
    }

    /// FC 24: reads the FIFO queue whose count register is at `address` (0–31 values).
    ///
    /// # Errors
    /// Any [`Error`].
    pub fn read_fifo_queue(&mut self, unit_id: u8, address: u16) -> Result<Vec<u16>> {
        let request = Request::ReadFifoQueue { address };
        self.expect(unit_id, &request, |response| match response {
            Response::ReadFifoQueue { values } => Some(values.iter().collect()),
            _ => None,
        })
    }

    /// FC 20: reads the record groups in `groups`; one register list per group.
    ///
    /// # Errors
    /// Any [`Error`].
    pub fn read_file_record(
        &mut self,
        unit_id: u8,
        groups: &[FileReadGroup],
    ) -> Result<Vec<Vec<u16>>> {
        let request = Request::ReadFileRecord {
            groups: FileReadGroups::from_items(groups),
        };
        self.expect(unit_id, &request, |response| match response {
            Response::ReadFileRecord { records } => {
                Some(records.iter().map(|group| group.iter().collect()).collect())
            }
            _ => None,
        })
    }

    /// FC 21: writes the record groups in `records`.
    ///
    /// # Errors
    /// Any [`Error`].
    pub fn write_file_record(&mut self, unit_id: u8, records: &[FileRecord<'_>]) -> Result<()> {
        let request = Request::WriteFileRecord {
            records: FileRecords::from_items(records),
        };
        self.write(unit_id, &request)
    }

    /// FC 07: the eight exception status outputs, lowest in bit 0.
    ///
    /// # Errors
    /// Any [`Error`].
    pub fn read_exception_status(&mut self, unit_id: u8) -> Result<u8> {
        self.expect(
            unit_id,
            &Request::ReadExceptionStatus,
            |response| match response {
                Response::ReadExceptionStatus { status } => Some(*status),
                _ => None,
            },
        )
    }

    /// FC 08: a diagnostics request. Sub-function 0x04 gets no response and returns
    /// [`DiagnosticsReply::ForceListenOnlyMode`] once sent.
    ///
    /// # Errors
    /// Any [`Error`].
    pub fn diagnostics(
        &mut self,
        unit_id: u8,
        request: DiagnosticsRequest<'_>,
    ) -> Result<DiagnosticsReply> {
        let request = Request::Diagnostics(request);
        let function = request.function();
        let reply = self.execute(unit_id, &request, |response| match response {
            Response::Diagnostics(diagnostics) => Ok(DiagnosticsReply::from(*diagnostics)),
            _ => Err(Error::UnexpectedResponse(DecodeError::UnexpectedFunction {
                expected: function,
                actual: response.function().value(),
            })),
        })?;
        Ok(reply.unwrap_or(DiagnosticsReply::ForceListenOnlyMode))
    }

    /// FC 11: the status word and the event counter.
    ///
    /// # Errors
    /// Any [`Error`].
    pub fn get_comm_event_counter(&mut self, unit_id: u8) -> Result<CommEventCounter> {
        self.expect(
            unit_id,
            &Request::GetCommEventCounter,
            |response| match response {
                Response::GetCommEventCounter {
                    status,
                    event_count,
                } => Some(CommEventCounter {
                    status: *status,
                    event_count: *event_count,
                }),
                _ => None,
            },
        )
    }

    /// FC 12: status, counters and the event log.
    ///
    /// # Errors
    /// Any [`Error`].
    pub fn get_comm_event_log(&mut self, unit_id: u8) -> Result<CommEventLog> {
        self.expect(
            unit_id,
            &Request::GetCommEventLog,
            |response| match response {
                Response::GetCommEventLog {
                    status,
                    event_count,
                    message_count,
                    events,
                } => Some(CommEventLog {
                    status: *status,
                    event_count: *event_count,
                    message_count: *message_count,
                    events: events.to_vec(),
                }),
                _ => None,
            },
        )
    }

    /// FC 17: the device-specific server id, run indicator and additional data, raw.
    ///
    /// # Errors
    /// Any [`Error`].
    pub fn report_server_id(&mut self, unit_id: u8) -> Result<Vec<u8>> {
        self.expect(
            unit_id,
            &Request::ReportServerId,
            |response| match response {
                Response::ReportServerId { data } => Some(data.to_vec()),
                _ => None,
            },
        )
    }

    /// FC 43/14: reads device identification objects from `object_id` on. For stream access
    /// (codes 1–3) it follows "more follows" until the server has sent everything, with at most
    /// [`MAX_DEVICE_ID_REQUESTS`] requests and only while the next object id moves forward.
    ///
    /// # Errors
    /// Any [`Error`]; [`Error::UnexpectedResponse`] when the server's "next object id" does not
    /// move forward or the request limit is reached.
    pub fn read_device_identification(
        &mut self,
        unit_id: u8,
        code: ReadDeviceIdCode,
        object_id: u8,
    ) -> Result<DeviceInfo> {
        let mut info = DeviceInfo {
            conformity_level: 0,
            objects: Vec::new(),
        };
        let mut next = object_id;
        for _ in 0..MAX_DEVICE_ID_REQUESTS {
            let request = Request::ReadDeviceIdentification {
                code,
                object_id: next,
            };
            let (more, next_object_id) =
                self.expect(unit_id, &request, |response| match response {
                    Response::ReadDeviceIdentification(identification) => {
                        info.conformity_level = identification.conformity_level;
                        info.objects.extend(
                            identification
                                .objects
                                .iter()
                                .map(|object| (object.id, object.value.to_vec())),
                        );
                        Some((identification.more_follows, identification.next_object_id))
                    }
                    _ => None,
                })?;
            if !more || code == ReadDeviceIdCode::Individual {
                return Ok(info);
            }
            if next_object_id <= next {
                // A server that does not make progress would keep us asking forever.
                return Err(Error::UnexpectedResponse(DecodeError::InvalidFieldValue {
                    function: FunctionCode::EncapsulatedInterfaceTransport,
                    value: u16::from(next_object_id),
                }));
            }
            next = next_object_id;
        }
        Err(Error::UnexpectedResponse(DecodeError::InvalidFieldValue {
            function: FunctionCode::EncapsulatedInterfaceTransport,
            value: u16::from(next),
        }))
    }
}
