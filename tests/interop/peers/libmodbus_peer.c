/*
 * libmodbus peer for the modbus-stack interop tests (issue 6).
 *
 * Usage:
 *   libmodbus_peer server-tcp PORT           serve the shared model on 127.0.0.1:PORT
 *   libmodbus_peer server-rtu DEVICE UNIT    serve the shared model as RTU server UNIT on DEVICE
 *   libmodbus_peer client-tcp HOST PORT UNIT run the client script against a TCP server
 *   libmodbus_peer client-rtu DEVICE UNIT    run the client script against an RTU server
 *   libmodbus_peer client-read-tcp HOST PORT UNIT HR_ADDR HR_COUNT COIL_ADDR COIL_COUNT
 *                                            read holding registers and coils (steps
 *                                            "holding" and "coils")
 *
 * Serial line: 19200 baud, 8 data bits, no parity, 1 stop bit (8N1). The spec's default is 8E1
 * (modbus-reference.md §8.3), but pyserial cannot set PARENB on this machine's ptys (EINVAL),
 * and 8N1 is what most field devices run; the pymodbus peer uses the same. On a pty the
 * settings are not enforced, but both ends agree so that a real line would work too.
 *
 * The shared data model (identical to our simulator): 10000 coils, discrete inputs, holding and
 * input registers at addresses 0..=9999; coils and holding registers start at 0, discrete input
 * i = (i % 3 == 0), input register i = i.
 *
 * Server modes print "ready" (flushed) once listening, serve TCP connections one after another,
 * and exit on SIGTERM or when stdin reaches EOF.
 *
 * Client modes print one line per step, then "done":
 *   step NAME ok [V...]        values in decimal (bits as 0/1, registers as u16, bytes as u8)
 *   step NAME exception CODE   the server answered with exception CODE (decimal)
 *   step NAME error TEXT       anything else (timeout, protocol error)
 *   step NAME unsupported      this peer cannot send the request
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <modbus.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <unistd.h>

#define MODEL_SIZE 10000
#define BAUD 19200
#define PARITY 'N'
#define DATA_BITS 8
#define STOP_BITS 1

static volatile sig_atomic_t stop_requested = 0;

static void on_signal(int sig) {
    (void)sig;
    stop_requested = 1;
}

static void die(const char *what) {
    fprintf(stderr, "libmodbus_peer: %s: %s\n", what, modbus_strerror(errno));
    exit(2);
}

static modbus_mapping_t *new_model(void) {
    modbus_mapping_t *map = modbus_mapping_new(MODEL_SIZE, MODEL_SIZE, MODEL_SIZE, MODEL_SIZE);
    if (map == NULL) {
        die("modbus_mapping_new");
    }
    for (int i = 0; i < MODEL_SIZE; i++) {
        map->tab_input_bits[i] = (i % 3 == 0) ? 1 : 0;
        map->tab_input_registers[i] = (uint16_t)i;
    }
    return map;
}

/* Returns 1 when stdin reached EOF (or errored): time to exit. */
static int stdin_closed(void) {
    char buf[64];
    ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
    return n <= 0;
}

/*
 * Waits until `fd` or stdin is readable, or a stop is requested. Returns 1 when `fd` is
 * readable, 0 when the server should stop.
 */
static int wait_readable(int fd) {
    for (;;) {
        if (stop_requested) {
            return 0;
        }
        fd_set set;
        FD_ZERO(&set);
        FD_SET(fd, &set);
        FD_SET(STDIN_FILENO, &set);
        int nfds = (fd > STDIN_FILENO ? fd : STDIN_FILENO) + 1;
        struct timeval tv = {0, 200000}; /* re-check the stop flag five times a second */
        int rc = select(nfds, &set, NULL, NULL, &tv);
        if (rc < 0) {
            if (errno == EINTR) {
                continue;
            }
            return 0;
        }
        if (rc == 0) {
            continue;
        }
        if (FD_ISSET(STDIN_FILENO, &set) && stdin_closed()) {
            return 0;
        }
        if (FD_ISSET(fd, &set)) {
            return 1;
        }
    }
}

/* Serves requests on the connected context until the peer closes, an error, or a stop. */
static void serve_connection(modbus_t *ctx, modbus_mapping_t *map, int fd) {
    uint8_t query[MODBUS_MAX_ADU_LENGTH];
    while (wait_readable(fd)) {
        int rc = modbus_receive(ctx, query);
        if (rc == 0) {
            continue; /* not for us (RTU unit filter) */
        }
        if (rc < 0) {
            if (errno == EMBBADCRC || errno == EMBBADDATA) {
                /* RTU: a broken frame is dropped and the line is flushed; keep serving. */
                if (modbus_get_socket(ctx) == fd && fd >= 0 && isatty(fd)) {
                    modbus_flush(ctx);
                    continue;
                }
            }
            return; /* TCP: connection closed by the client, or a framing error: close it */
        }
        if (modbus_reply(ctx, query, rc, map) < 0 && !isatty(fd)) {
            return;
        }
    }
}

static int run_server_tcp(int port) {
    modbus_t *ctx = modbus_new_tcp("127.0.0.1", port);
    if (ctx == NULL) {
        die("modbus_new_tcp");
    }
    modbus_mapping_t *map = new_model();
    int listener = modbus_tcp_listen(ctx, 4);
    if (listener < 0) {
        die("modbus_tcp_listen");
    }
    printf("ready\n");
    fflush(stdout);
    while (wait_readable(listener)) {
        int fd = modbus_tcp_accept(ctx, &listener);
        if (fd < 0) {
            continue;
        }
        serve_connection(ctx, map, fd);
        close(fd);
        modbus_set_socket(ctx, -1);
    }
    close(listener);
    modbus_mapping_free(map);
    modbus_free(ctx);
    return 0;
}

static int run_server_rtu(const char *device, int unit) {
    modbus_t *ctx = modbus_new_rtu(device, BAUD, PARITY, DATA_BITS, STOP_BITS);
    if (ctx == NULL) {
        die("modbus_new_rtu");
    }
    if (modbus_set_slave(ctx, unit) < 0) {
        die("modbus_set_slave");
    }
    if (modbus_connect(ctx) < 0) {
        die("modbus_connect");
    }
    modbus_mapping_t *map = new_model();
    printf("ready\n");
    fflush(stdout);
    serve_connection(ctx, map, modbus_get_socket(ctx));
    modbus_mapping_free(map);
    modbus_close(ctx);
    modbus_free(ctx);
    return 0;
}

/* ---- client script ------------------------------------------------------------------------ */

static void print_failure(const char *name) {
    int err = errno;
    if (err > MODBUS_ENOBASE && err <= MODBUS_ENOBASE + 0x0B) {
        printf("step %s exception %d\n", name, err - MODBUS_ENOBASE);
    } else {
        printf("step %s error %s\n", name, modbus_strerror(err));
    }
}

static void print_regs(const char *name, const uint16_t *regs, int n) {
    printf("step %s ok", name);
    for (int i = 0; i < n; i++) {
        printf(" %u", (unsigned)regs[i]);
    }
    printf("\n");
}

static void print_bits(const char *name, const uint8_t *bits, int n) {
    printf("step %s ok", name);
    for (int i = 0; i < n; i++) {
        printf(" %u", bits[i] ? 1u : 0u);
    }
    printf("\n");
}

static void print_count(const char *name, int rc) {
    if (rc < 0) {
        print_failure(name);
    } else {
        printf("step %s ok %d\n", name, rc);
    }
}

/*
 * Sends a raw PDU (unit id prepended by us, framing added by libmodbus) and prints the
 * exception code of the answer, or the bytes of a normal answer.
 */
static void raw_step(modbus_t *ctx, const char *name, int unit, const uint8_t *pdu, int len) {
    uint8_t req[MODBUS_MAX_PDU_LENGTH + 1];
    uint8_t rsp[MODBUS_MAX_ADU_LENGTH];
    req[0] = (uint8_t)unit;
    memcpy(req + 1, pdu, (size_t)len);
    if (modbus_send_raw_request(ctx, req, len + 1) < 0) {
        print_failure(name);
        return;
    }
    int rc = modbus_receive_confirmation(ctx, rsp);
    if (rc < 0) {
        print_failure(name);
        modbus_flush(ctx);
        return;
    }
    int offset = modbus_get_header_length(ctx);
    if (rc >= offset + 2 && (rsp[offset] & 0x80)) {
        printf("step %s exception %u\n", name, (unsigned)rsp[offset + 1]);
        return;
    }
    printf("step %s ok", name);
    for (int i = offset; i < rc; i++) {
        printf(" %u", (unsigned)rsp[i]);
    }
    printf("\n");
}

static int run_client_script(modbus_t *ctx, int unit) {
    uint16_t regs[128];
    uint8_t bits[64];
    int rc;

    if (modbus_set_slave(ctx, unit) < 0) {
        die("modbus_set_slave");
    }
    modbus_set_response_timeout(ctx, 2, 0);
    if (modbus_connect(ctx) < 0) {
        die("modbus_connect");
    }

    const uint16_t hr_values[3] = {0x1234, 0x5678, 0x9ABC};
    print_count("write_registers", modbus_write_registers(ctx, 100, 3, hr_values));
    print_count("write_register", modbus_write_register(ctx, 103, 0xBEEF));
    rc = modbus_read_registers(ctx, 100, 4, regs);
    if (rc < 0) print_failure("read_registers"); else print_regs("read_registers", regs, rc);

    const uint8_t coil_values[9] = {1, 0, 1, 1, 0, 0, 1, 0, 1};
    print_count("write_coils", modbus_write_bits(ctx, 200, 9, coil_values));
    print_count("write_coil", modbus_write_bit(ctx, 209, 1));
    rc = modbus_read_bits(ctx, 200, 10, bits);
    if (rc < 0) print_failure("read_coils"); else print_bits("read_coils", bits, rc);

    rc = modbus_read_input_registers(ctx, 0, 10, regs);
    if (rc < 0) print_failure("read_input_registers");
    else print_regs("read_input_registers", regs, rc);
    rc = modbus_read_input_bits(ctx, 0, 10, bits);
    if (rc < 0) print_failure("read_discrete_inputs");
    else print_bits("read_discrete_inputs", bits, rc);

    /* FC 22, the spec's example: 0x12 AND 0xF2 OR 0x25 -> 0x17. */
    print_count("mask_write_setup", modbus_write_register(ctx, 300, 0x0012));
    print_count("mask_write", modbus_mask_write_register(ctx, 300, 0x00F2, 0x0025));
    rc = modbus_read_registers(ctx, 300, 1, regs);
    if (rc < 0) print_failure("mask_write_readback");
    else print_regs("mask_write_readback", regs, rc);

    /* FC 23: the write happens before the read. */
    const uint16_t rw_values[3] = {11, 22, 33};
    rc = modbus_write_and_read_registers(ctx, 310, 3, rw_values, 309, 5, regs);
    if (rc < 0) print_failure("write_read_registers");
    else print_regs("write_read_registers", regs, rc);

    /* Typed values: float ABCD at 400, float DCBA at 402, int32 (high word first) at 404. */
    uint16_t typed[6];
    modbus_set_float_abcd(3.14159f, typed);
    modbus_set_float_dcba(-2.5e-3f, typed + 2);
    {
        /* MODBUS_SET_INT32_TO_INT16 shifts a signed value; do the same on its bit pattern. */
        int32_t value32 = -123456789;
        uint32_t bits32 = (uint32_t)value32;
        MODBUS_SET_INT32_TO_INT16(typed, 4, bits32);
    }
    print_regs("typed_values", typed, 6);
    print_count("write_typed", modbus_write_registers(ctx, 400, 6, typed));
    rc = modbus_read_registers(ctx, 400, 6, regs);
    if (rc < 0) print_failure("read_typed"); else print_regs("read_typed", regs, rc);

    /* Exceptions. */
    rc = modbus_read_registers(ctx, 9999, 2, regs);
    if (rc < 0) print_failure("read_beyond"); else print_regs("read_beyond", regs, rc);
    rc = modbus_read_bits(ctx, 10000, 1, bits);
    if (rc < 0) print_failure("read_coils_beyond");
    else print_bits("read_coils_beyond", bits, rc);
    const uint8_t too_many[5] = {0x03, 0x00, 0x00, 0x00, 0x7E}; /* 126 registers */
    raw_step(ctx, "illegal_quantity", unit, too_many, 5);
    const uint8_t user_fc[1] = {0x41}; /* user-defined FC 65, no data */
    raw_step(ctx, "unsupported_function", unit, user_fc, 1);

    uint8_t id[MODBUS_MAX_PDU_LENGTH];
    rc = modbus_report_slave_id(ctx, (int)sizeof id, id);
    if (rc < 0) {
        print_failure("report_server_id");
    } else {
        printf("step report_server_id ok");
        for (int i = 0; i < rc && i < (int)sizeof id; i++) {
            printf(" %u", (unsigned)id[i]);
        }
        printf("\n");
    }

    printf("done\n");
    fflush(stdout);
    modbus_close(ctx);
    modbus_free(ctx);
    return 0;
}

static int parse_int(const char *text, int lo, int hi);

/* Reads holding registers and coils (cross-check of values another client wrote). */
static int run_client_read(modbus_t *ctx, int unit, char **args) {
    uint16_t regs[128];
    uint8_t bits[2000];
    int hr_address = parse_int(args[0], 0, 65535);
    int hr_count = parse_int(args[1], 1, 125);
    int coil_address = parse_int(args[2], 0, 65535);
    int coil_count = parse_int(args[3], 1, 2000);
    if (modbus_set_slave(ctx, unit) < 0) {
        die("modbus_set_slave");
    }
    modbus_set_response_timeout(ctx, 2, 0);
    if (modbus_connect(ctx) < 0) {
        die("modbus_connect");
    }
    int rc = modbus_read_registers(ctx, hr_address, hr_count, regs);
    if (rc < 0) print_failure("holding"); else print_regs("holding", regs, rc);
    rc = modbus_read_bits(ctx, coil_address, coil_count, bits);
    if (rc < 0) print_failure("coils"); else print_bits("coils", bits, rc);
    printf("done\n");
    fflush(stdout);
    modbus_close(ctx);
    modbus_free(ctx);
    return 0;
}

static int parse_int(const char *text, int lo, int hi) {
    char *end = NULL;
    long value = strtol(text, &end, 10);
    if (end == text || *end != '\0' || value < lo || value > hi) {
        fprintf(stderr, "libmodbus_peer: bad number %s\n", text);
        exit(2);
    }
    return (int)value;
}

static void usage(void) {
    fprintf(stderr,
            "usage: libmodbus_peer server-tcp PORT | server-rtu DEVICE UNIT |\n"
            "       client-tcp HOST PORT UNIT | client-rtu DEVICE UNIT |\n"
            "       client-read-tcp HOST PORT UNIT HR_ADDR HR_COUNT COIL_ADDR COIL_COUNT\n");
    exit(2);
}

int main(int argc, char **argv) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);

    if (argc < 2) usage();
    const char *mode = argv[1];
    if (strcmp(mode, "server-tcp") == 0 && argc == 3) {
        return run_server_tcp(parse_int(argv[2], 1, 65535));
    }
    if (strcmp(mode, "server-rtu") == 0 && argc == 4) {
        return run_server_rtu(argv[2], parse_int(argv[3], 1, 247));
    }
    if (strcmp(mode, "client-tcp") == 0 && argc == 5) {
        modbus_t *ctx = modbus_new_tcp(argv[2], parse_int(argv[3], 1, 65535));
        if (ctx == NULL) die("modbus_new_tcp");
        return run_client_script(ctx, parse_int(argv[4], 0, 255));
    }
    if (strcmp(mode, "client-read-tcp") == 0 && argc == 9) {
        modbus_t *ctx = modbus_new_tcp(argv[2], parse_int(argv[3], 1, 65535));
        if (ctx == NULL) die("modbus_new_tcp");
        return run_client_read(ctx, parse_int(argv[4], 0, 255), argv + 5);
    }
    if (strcmp(mode, "client-rtu") == 0 && argc == 4) {
        modbus_t *ctx = modbus_new_rtu(argv[2], BAUD, PARITY, DATA_BITS, STOP_BITS);
        if (ctx == NULL) die("modbus_new_rtu");
        return run_client_script(ctx, parse_int(argv[3], 1, 247));
    }
    usage();
    return 2;
}
