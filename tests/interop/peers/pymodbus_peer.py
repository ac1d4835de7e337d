#!/usr/bin/env python3
"""pymodbus peer for the modbus-stack interop tests (issue 6).

Usage (same modes and output as libmodbus_peer.c):
  pymodbus_peer.py server-tcp PORT           serve the shared model on 127.0.0.1:PORT
  pymodbus_peer.py server-rtu DEVICE UNIT    serve the shared model as RTU server UNIT on DEVICE
  pymodbus_peer.py client-tcp HOST PORT UNIT run the client script against a TCP server
  pymodbus_peer.py client-rtu DEVICE UNIT    run the client script against an RTU server
  pymodbus_peer.py client-read-tcp HOST PORT UNIT HR_ADDR HR_COUNT COIL_ADDR COIL_COUNT
                                             read holding registers and coils (steps
                                             "holding" and "coils")

Written against pymodbus 3.16 (pinned in tests/interop/requirements.txt): `device_id=` keyword,
`SimDevice`/`SimData` data model. Serial line 19200 8N1, as the libmodbus peer (see there why not 8E1).

Model: 10000 coils, discrete inputs, holding and input registers at 0..=9999; coils and holding
registers start at 0, discrete input i = (i % 3 == 0), input register i = i.

Client output, one line per step, then "done":
  step NAME ok [V...]        decimal values (bits 0/1, registers u16, bytes u8)
  step NAME exception CODE   exception response with CODE (decimal)
  step NAME error TEXT       anything else (timeout, decode error)
  step NAME unsupported      pymodbus cannot send this request
Steps whose answer has no simple value list print the response PDU bytes, function code first.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import struct
import sys

from pymodbus import FramerType
from pymodbus.client import ModbusSerialClient, ModbusTcpClient
from pymodbus.pdu import ModbusPDU
from pymodbus.pdu.device import ModbusDeviceIdentification
from pymodbus.pdu.file_message import FileRecord
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

MODEL_SIZE = 10000
SERIAL = {"baudrate": 19200, "bytesize": 8, "parity": "N", "stopbits": 1}

# pymodbus logs deprecation warnings and per-request errors on stderr; keep stdout clean.
logging.basicConfig(stream=sys.stderr, level=logging.ERROR)


def model(unit: int) -> SimDevice:
    """The shared data model as a pymodbus device (non-shared blocks, bit addressing)."""
    coils = [SimData(0, values=[False] * MODEL_SIZE, datatype=DataType.BITS)]
    inputs = [
        SimData(0, values=[i % 3 == 0 for i in range(MODEL_SIZE)], datatype=DataType.BITS)
    ]
    holding = [SimData(0, values=[0] * MODEL_SIZE, datatype=DataType.REGISTERS)]
    input_regs = [SimData(0, values=list(range(MODEL_SIZE)), datatype=DataType.REGISTERS)]
    identity = ModbusDeviceIdentification(
        info_name={
            "VendorName": "modbus-stack interop",
            "ProductCode": "PYPEER",
            "MajorMinorRevision": "1.0",
        }
    )
    return SimDevice(
        id=unit, simdata=(coils, inputs, holding, input_regs), identity=identity
    )


async def serve(server) -> int:
    """Starts `server`, prints ready, and runs until SIGTERM or stdin EOF."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    def on_stdin() -> None:
        try:
            data = os.read(sys.stdin.fileno(), 64)
        except OSError:
            data = b""
        if not data:
            loop.remove_reader(sys.stdin.fileno())
            stop.set()

    loop.add_reader(sys.stdin.fileno(), on_stdin)
    await server.serve_forever(background=True)
    print("ready", flush=True)
    await stop.wait()
    await server.shutdown()
    return 0


async def server_tcp(port: int) -> int:
    # Unit 0 in a SimDevice means "every unit id": a direct TCP server ignores the unit id
    # (modbus-reference.md §10.2), as libmodbus does.
    server = ModbusTcpServer(model(0), address=("127.0.0.1", port))
    return await serve(server)


async def server_rtu(device: str, unit: int) -> int:
    server = ModbusSerialServer(model(unit), framer=FramerType.RTU, port=device, **SERIAL)
    return await serve(server)


class RawRequest(ModbusPDU):
    """A request with a caller-chosen function code and data, for the exception steps."""

    function_code = 0x41
    rtu_frame_size = 4  # an exception answer: address, code | 0x80, exception, CRC x2 - 1

    def __init__(self, data: bytes = b"", dev_id: int = 1, transaction_id: int = 0):
        super().__init__(dev_id=dev_id, transaction_id=transaction_id)
        self.data = data

    def encode(self) -> bytes:
        return self.data

    def decode(self, data: bytes) -> None:
        self.data = data


class RawFc03(RawRequest):
    """FC 03 with raw data (the client API validates the quantity, this does not)."""

    function_code = 0x03


def values_line(name: str, values) -> str:
    return " ".join(["step", name, "ok"] + [str(int(v)) for v in values])


def pdu_bytes(response) -> list[int]:
    return [response.function_code] + list(response.encode())


def step(name: str, call, render) -> None:
    """Runs one step and prints its line; never raises."""
    try:
        response = call()
    except Exception as exc:  # noqa: BLE001 - any failure is a result to report
        text = " ".join(str(exc).split()) or type(exc).__name__
        print(f"step {name} error {text}", flush=True)
        return
    if response.isError():
        print(f"step {name} exception {response.exception_code}", flush=True)
        return
    try:
        print(values_line(name, render(response)), flush=True)
    except Exception as exc:  # noqa: BLE001
        print(f"step {name} error cannot render: {exc}", flush=True)


def float_dcba(value: float) -> list[int]:
    """libmodbus `modbus_set_float_dcba`: the four bytes fully reversed."""
    raw = struct.pack("<f", value)
    return [struct.unpack(">H", raw[0:2])[0], struct.unpack(">H", raw[2:4])[0]]


def run_script(client, unit: int) -> int:
    if not client.connect():
        print("pymodbus_peer: cannot connect", file=sys.stderr)
        return 2
    u = {"device_id": unit}
    bits = lambda r: r.bits  # noqa: E731
    regs = lambda r: r.registers  # noqa: E731

    step("write_registers",
         lambda: client.write_registers(100, [0x1234, 0x5678, 0x9ABC], **u), lambda r: [r.count])
    step("write_register", lambda: client.write_register(103, 0xBEEF, **u), lambda r: [1])
    step("read_registers", lambda: client.read_holding_registers(100, count=4, **u), regs)

    step("write_coils",
         lambda: client.write_coils(200, [True, False, True, True, False, False, True, False, True], **u),
         lambda r: [r.count])
    step("write_coil", lambda: client.write_coil(209, True, **u), lambda r: [1])
    step("read_coils", lambda: client.read_coils(200, count=10, **u), lambda r: r.bits[:10])

    step("read_input_registers", lambda: client.read_input_registers(0, count=10, **u), regs)
    step("read_discrete_inputs",
         lambda: client.read_discrete_inputs(0, count=10, **u), lambda r: r.bits[:10])

    step("mask_write_setup", lambda: client.write_register(300, 0x0012, **u), lambda r: [1])
    step("mask_write",
         lambda: client.mask_write_register(address=300, and_mask=0x00F2, or_mask=0x0025, **u),
         lambda r: [1])
    step("mask_write_readback", lambda: client.read_holding_registers(300, count=1, **u), regs)
    step("write_read_registers",
         lambda: client.readwrite_registers(read_address=309, read_count=5, write_address=310,
                                            values=[11, 22, 33], **u),
         regs)

    abcd = client.convert_to_registers(3.14159, client.DATATYPE.FLOAT32, word_order="big")
    typed = abcd + float_dcba(-2.5e-3) + client.convert_to_registers(
        -123456789, client.DATATYPE.INT32, word_order="big")
    print(values_line("typed_values", typed), flush=True)
    step("write_typed", lambda: client.write_registers(400, typed, **u), lambda r: [r.count])
    step("read_typed", lambda: client.read_holding_registers(400, count=6, **u), regs)

    step("read_beyond", lambda: client.read_holding_registers(9999, count=2, **u), regs)
    step("read_coils_beyond", lambda: client.read_coils(10000, count=1, **u), bits)
    step("illegal_quantity",
         lambda: client.execute(False, RawFc03(bytes([0x00, 0x00, 0x00, 0x7E]), dev_id=unit)),
         pdu_bytes)
    step("unsupported_function",
         lambda: client.execute(False, RawRequest(b"", dev_id=unit)), pdu_bytes)
    step("report_server_id", lambda: client.report_device_id(**u),
         lambda r: list(r.encode())[1:])

    # Serial-line and less common functions: pymodbus can send them; servers may refuse.
    step("read_exception_status", lambda: client.read_exception_status(**u), lambda r: [r.status])
    step("diag_return_query_data", lambda: client.diag_query_data(b"\xa5\x37", **u), pdu_bytes)
    step("comm_event_counter", lambda: client.diag_get_comm_event_counter(**u), pdu_bytes)
    step("comm_event_log", lambda: client.diag_get_comm_event_log(**u), pdu_bytes)
    step("write_file_record",
         lambda: client.write_file_record(
             [FileRecord(file_number=4, record_number=7, record_data=b"\x06\xaf\x04\xbe")], **u),
         pdu_bytes)
    step("read_file_record",
         lambda: client.read_file_record(
             [FileRecord(file_number=4, record_number=7, record_length=2)], **u),
         pdu_bytes)
    step("read_fifo_queue", lambda: client.read_fifo_queue(address=500, **u), pdu_bytes)
    step("read_device_identification",
         lambda: client.read_device_information(read_code=1, object_id=0, **u), pdu_bytes)

    print("done", flush=True)
    client.close()
    return 0


def run_read(client, unit: int, hr_address: int, hr_count: int, coil_address: int,
             coil_count: int) -> int:
    """Reads holding registers and coils (cross-check of values another client wrote)."""
    if not client.connect():
        print("pymodbus_peer: cannot connect", file=sys.stderr)
        return 2
    u = {"device_id": unit}
    step("holding", lambda: client.read_holding_registers(hr_address, count=hr_count, **u),
         lambda r: r.registers)
    step("coils", lambda: client.read_coils(coil_address, count=coil_count, **u),
         lambda r: r.bits[:coil_count])
    print("done", flush=True)
    client.close()
    return 0


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    mode, args = argv[1], argv[2:]
    if mode == "server-tcp" and len(args) == 1:
        return asyncio.run(server_tcp(int(args[0])))
    if mode == "server-rtu" and len(args) == 2:
        return asyncio.run(server_rtu(args[0], int(args[1])))
    if mode == "client-tcp" and len(args) == 3:
        client = ModbusTcpClient(args[0], port=int(args[1]), timeout=2, retries=0)
        client.register(RawRequest)
        return run_script(client, int(args[2]))
    if mode == "client-read-tcp" and len(args) == 7:
        client = ModbusTcpClient(args[0], port=int(args[1]), timeout=2, retries=0)
        return run_read(client, *[int(a) for a in args[2:]])
    if mode == "client-rtu" and len(args) == 2:
        client = ModbusSerialClient(args[0], framer=FramerType.RTU, timeout=2, retries=0,
                                    **SERIAL)
        client.register(RawRequest)
        return run_script(client, int(args[1]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
