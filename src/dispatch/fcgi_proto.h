/* fcgi_proto.h - the FastCGI 1.0 wire format, as the web-server side of a
 * RESPONDER request needs it: encoding a request, decoding the
 * application's records, and reading the CGI response head.
 *
 * Pure functions over buffers, no I/O, so that the target (fcgi.c), the
 * unit tests and a fuzzer all drive exactly the same code. Everything here
 * follows the FastCGI specification (Open Market, 1996) and RFC 3875 (CGI
 * 1.1) for the response head; where php-fpm is stricter than the
 * specification the encoders stay within what php-fpm accepts (see
 * FCGI_CHUNK). */
#ifndef DEFER_FCGI_PROTO_H
#define DEFER_FCGI_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

#define FCGI_VERSION_1 1
#define FCGI_HEADER_LEN 8
/* The most content one record can carry. */
#define FCGI_MAX_CONTENT 65535
/* How much content the encoders put in one record: a multiple of 8 below
 * FCGI_MAX_CONTENT, so that a full record needs no padding. php-fpm (8.2,
 * tried) drops the connection on a PARAMS record whose content plus
 * padding exceeds 65535 bytes - a full 65535-byte record padded to 65536,
 * which the specification allows - and on a name-value pair cut across
 * two PARAMS records. STDIN records of any legal size are fine. */
#define FCGI_CHUNK 65528

/* Record types. */
enum {
    FCGI_BEGIN_REQUEST = 1,
    FCGI_ABORT_REQUEST = 2,
    FCGI_END_REQUEST = 3,
    FCGI_PARAMS = 4,
    FCGI_STDIN = 5,
    FCGI_STDOUT = 6,
    FCGI_STDERR = 7,
    FCGI_DATA = 8,
    FCGI_GET_VALUES = 9,
    FCGI_GET_VALUES_RESULT = 10,
    FCGI_UNKNOWN_TYPE = 11,
};

/* Roles, and the one flag of BEGIN_REQUEST. */
enum { FCGI_RESPONDER = 1, FCGI_AUTHORIZER = 2, FCGI_FILTER = 3 };
#define FCGI_KEEP_CONN 1

/* END_REQUEST protocol status. */
enum {
    FCGI_REQUEST_COMPLETE = 0,
    FCGI_CANT_MPX_CONN = 1,
    FCGI_OVERLOADED = 2,
    FCGI_UNKNOWN_ROLE = 3,
};

/* A name or value longer than this cannot be encoded (31-bit lengths). */
#define FCGI_PAIR_LEN_MAX 0x7fffffffu

/* ---- encoding: each appends to `out` and returns false only when memory
 * is exhausted (or a length cannot be encoded); `out` may then hold part
 * of what was asked. ---- */

/* The 8-byte record header. */
void fcgi_record_header(uint8_t hdr[FCGI_HEADER_LEN], uint8_t type, uint16_t request_id,
                        uint16_t content_len, uint8_t padding_len);
/* Padding that brings a record of this content length to a multiple of 8. */
uint8_t fcgi_padding(size_t content_len);

/* One record, padded to a multiple of 8 bytes. len <= FCGI_MAX_CONTENT. */
bool fcgi_put_record(buf_t *out, uint8_t type, uint16_t request_id, const void *content,
                     size_t len);
/* BEGIN_REQUEST for role with flags (FCGI_KEEP_CONN or 0). */
bool fcgi_put_begin_request(buf_t *out, uint16_t request_id, uint16_t role, uint8_t flags);
/* One name-value pair, in the 1- or 4-byte length encoding, appended to a
 * buffer that collects the value of a PARAMS stream. */
bool fcgi_put_pair(buf_t *pairs, const void *name, size_t name_len, const void *value,
                   size_t value_len);
/* Convenience for NUL-terminated strings. */
bool fcgi_put_pair_str(buf_t *pairs, const char *name, const char *value);
/* The PARAMS stream: the encoded pairs cut into records of at most
 * FCGI_CHUNK bytes, never cutting a pair that fits in one record (php-fpm
 * decodes each record on its own and rejects a pair split across two),
 * then the empty PARAMS record that ends the stream. A pair larger than a
 * record is split, as the specification allows. */
bool fcgi_put_params(buf_t *out, uint16_t request_id, const void *pairs, size_t len);
/* A byte stream (STDIN, DATA, or for tests STDOUT/STDERR) in records of at
 * most FCGI_CHUNK bytes, each padded; with `end`, then the empty record
 * that ends the stream. */
bool fcgi_put_stream(buf_t *out, uint8_t type, uint16_t request_id, const void *data, size_t len,
                     bool end);
/* END_REQUEST (for tests and fake servers). */
bool fcgi_put_end_request(buf_t *out, uint16_t request_id, uint32_t app_status,
                          uint8_t protocol_status);

/* One decoded name-value pair, pointing into the buffer it came from. */
typedef struct fcgi_pair {
    const uint8_t *name;
    size_t name_len;
    const uint8_t *value;
    size_t value_len;
} fcgi_pair_t;

/* Decode the pair at the start of p; the bytes it took, or 0 when p holds
 * only part of a pair. */
size_t fcgi_pair_decode(const uint8_t *p, size_t len, fcgi_pair_t *pair);

/* ---- decoding what the application sends ---- */

typedef enum fcgi_event_type {
    FCGI_EV_NONE,   /* bytes were consumed, nothing to report yet */
    FCGI_EV_STDOUT, /* data/len: the next piece of the STDOUT stream */
    FCGI_EV_STDERR, /* data/len: the next piece of the STDERR stream */
    FCGI_EV_END,    /* END_REQUEST for our request: app_status, protocol_status */
    FCGI_EV_ERROR,  /* malformed input; error says what and where */
} fcgi_event_type_t;

typedef struct fcgi_event {
    fcgi_event_type_t type;
    const uint8_t *data; /* STDOUT/STDERR: inside the input given */
    size_t len;
    uint32_t app_status;
    uint8_t protocol_status;
    const char *error; /* ERROR: the decoder's message, valid while it lives */
} fcgi_event_t;

/* An incremental decoder of one request's response: records may arrive
 * cut anywhere. Records of unknown types, and the management records
 * GET_VALUES_RESULT and UNKNOWN_TYPE, are skipped. Malformed input (a
 * version other than 1, a record type only a web server sends, a record
 * for another request, an END_REQUEST body that is not 8 bytes, stream
 * data after the stream's end) is an error, after which the decoder
 * accepts nothing more; so is any byte after END_REQUEST. */
typedef struct fcgi_decoder {
    uint16_t request_id;
    uint8_t state;
    uint8_t type;
    uint8_t have;     /* header or END_REQUEST body bytes gathered */
    uint8_t buf[FCGI_HEADER_LEN];
    uint16_t padding; /* padding of the current record */
    uint32_t left;    /* content bytes of the current record still to come */
    bool stdout_ended, stderr_ended;
    uint64_t offset;  /* bytes consumed so far */
    char error[120];
} fcgi_decoder_t;

void fcgi_decoder_init(fcgi_decoder_t *d, uint16_t request_id);
/* Consume a prefix of in[0..len) and report at most one event; returns the
 * bytes consumed. It consumes at least one byte whenever len > 0, unless
 * it reports END or ERROR, or has already: then it consumes nothing and
 * reports ERROR for any further byte. Call it in a loop over each read. */
size_t fcgi_decode(fcgi_decoder_t *d, const uint8_t *in, size_t len, fcgi_event_t *ev);
/* True once END_REQUEST was decoded. */
bool fcgi_decoder_ended(const fcgi_decoder_t *d);

/* ---- the CGI response head (RFC 3875 section 6) at the start of STDOUT ---- */

typedef enum fcgi_head_result {
    FCGI_HEAD_PARTIAL, /* no blank line yet: more STDOUT is needed */
    FCGI_HEAD_OK,
    FCGI_HEAD_BAD, /* not a CGI header block; error says why */
} fcgi_head_result_t;

typedef struct fcgi_head {
    int status;      /* from Status:, else 302 with Location:, else 200 */
    size_t head_len; /* bytes of the head, with the blank line */
    bool has_status;
    bool has_location;
    const char *error; /* FCGI_HEAD_BAD: a static message */
} fcgi_head_t;

/* Parse the header lines at the start of p[0..len) up to the blank line.
 * Lines end with LF or CRLF; a header is a token, a colon and a value.
 * "Status: 503 Service Unavailable" gives 503 (three digits, 100-999). */
fcgi_head_result_t fcgi_parse_head(const char *p, size_t len, fcgi_head_t *h);

/* A name for a protocol status, e.g. "overloaded". */
const char *fcgi_protocol_status_name(uint8_t protocol_status);

#endif
