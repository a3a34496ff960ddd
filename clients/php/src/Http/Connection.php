<?php

declare(strict_types=1);

namespace Defer\Http;

use Defer\Exception\ConnectionException;
use Defer\Exception\ServerException;
use Defer\Exception\TimeoutException;

/**
 * A minimal HTTP/1.1 client over one kept-alive TCP connection.
 *
 * Written here rather than taken from ext-curl because curl is not among
 * PHP's standard extensions, and because the client needs exact control of
 * three things that general HTTP wrappers blur:
 *
 * - Reuse: one connection serves every call of a Client. A kept-alive
 *   connection the server has closed in the meantime (a restart, an idle
 *   timeout) is noticed before the request is written and replaced at once.
 * - Retries: a request is sent a second time only on a fresh connection,
 *   only once, and only when that cannot do anything twice: never after a
 *   byte of the answer arrived, and for a request that changes something
 *   (POST) only when not a byte of it had been written.
 * - Time: every call has one deadline covering connect, write and read. The
 *   socket is non-blocking and every wait is a stream_select() bounded by
 *   that deadline, so a server that accepts and then never answers, or one
 *   that stops reading a large body half way, ends in a TimeoutException
 *   instead of a hung PHP worker. (stream_set_timeout() would bound each read
 *   but neither the whole call nor a blocking write.)
 *
 * Answers are framed by Content-Length (what deferd sends); chunked answers
 * and answers ended by closing the connection are understood too, for the
 * sake of proxies in between. After a timeout, an unreadable answer or an
 * answer announcing "Connection: close", the connection is dropped, so a late
 * or left-over answer can never be taken for the answer to a later request.
 *
 * @internal used by Defer\Client; not part of the package's API
 */
final class Connection
{
    /** Largest status line plus headers accepted from the server. */
    private const HEAD_MAX = 65536;
    private const READ_CHUNK = 262144;
    private const WRITE_CHUNK = 262144;
    /** errno of a connect() that timed out (Linux, BSDs and macOS agree on the name, not the number). */
    private const ETIMEDOUT = [110, 60];

    /** @var resource|null */
    private $socket = null;
    /** The process that opened the socket: a forked child must not share it. */
    private int $ownerPid = 0;
    /** Bytes read from the socket and not yet consumed. */
    private string $in = '';
    /** Some byte of the current answer has arrived. */
    private bool $answerStarted = false;
    /** "GET /v1/tasks/5", for messages. */
    private string $what = '';
    private float $timeout = 0.0;
    private int $connects = 0;

    /**
     * @param string $host            host name or IP address (IPv6 in brackets)
     * @param string $hostHeader      value of the Host header
     * @param float  $connectTimeout  seconds allowed for the TCP connect
     */
    public function __construct(
        private readonly string $host,
        private readonly int $port,
        private readonly string $hostHeader,
        private readonly float $connectTimeout,
    ) {
    }

    public function __destruct()
    {
        $this->close();
    }

    /** A copy must not share the socket: two owners would read each other's answers. */
    public function __clone()
    {
        $this->socket = null;
        $this->in = '';
        $this->connects = 0;
    }

    /** How many TCP connections were opened so far (for tests and diagnostics). */
    public function connectCount(): int
    {
        return $this->connects;
    }

    /**
     * Sends one request and returns its answer, whatever its status.
     *
     * @param array<string, string> $headers   extra request headers
     * @param string|null           $body      request body; null sends none
     * @param float                 $timeout   seconds for the whole exchange
     * @param bool                  $repeatable sending it twice does no harm (GET, and
     *                                          cancels, which answer the same when repeated)
     *
     * @throws TimeoutException    no complete answer within $timeout
     * @throws ConnectionException cannot connect, or the connection broke
     * @throws ServerException     the answer is not HTTP
     */
    public function request(
        string $method,
        string $target,
        array $headers,
        ?string $body,
        float $timeout,
        bool $repeatable,
    ): Response {
        $deadline = microtime(true) + $timeout;
        $this->what = $method . ' ' . $target;
        $this->timeout = $timeout;
        $raw = $this->encode($method, $target, $headers, $body);

        $reused = $this->isUsable();
        if (!$reused) {
            $this->close();
            $this->connect($deadline);
        }
        try {
            return $this->exchange($raw, $deadline);
        } catch (ConnectionLost $lost) {
            $this->close();
            // A kept-alive connection that turned out closed, with nothing of
            // an answer yet: the server most likely never saw the request.
            // Most likely is enough for a request that does no harm twice; a
            // POST is sent again only when not a byte of it left this process.
            $again = $reused && !$lost->answerStarted && (!$lost->requestStarted || $repeatable);
            if (!$again) {
                throw $this->lost($lost);
            }
        } catch (\Throwable $e) {
            $this->close();
            throw $e;
        }

        $this->connect($deadline);
        try {
            return $this->exchange($raw, $deadline);
        } catch (ConnectionLost $lost) {
            $this->close();
            throw $this->lost($lost);
        } catch (\Throwable $e) {
            $this->close();
            throw $e;
        }
    }

    /** Closes the connection; the next request opens a new one. */
    public function close(): void
    {
        if (is_resource($this->socket)) {
            fclose($this->socket);
        }
        $this->socket = null;
        $this->in = '';
    }

    /**
     * @param array<string, string> $headers
     */
    private function encode(string $method, string $target, array $headers, ?string $body): string
    {
        $head = $method . ' ' . $target . " HTTP/1.1\r\nHost: " . $this->hostHeader . "\r\n";
        foreach ($headers as $name => $value) {
            $head .= $name . ': ' . $value . "\r\n";
        }
        if ($body !== null) {
            $head .= 'Content-Length: ' . strlen($body) . "\r\n";
        }

        return $head . "\r\n" . ($body ?? '');
    }

    /**
     * Can the open connection carry a request? A kept-alive connection is
     * idle: anything readable on it is the server's FIN (closed after a
     * restart or an idle timeout) or bytes nobody asked for. Either way it
     * must not be used, and finding out costs one poll with no wait.
     */
    private function isUsable(): bool
    {
        if (!is_resource($this->socket) || $this->ownerPid !== getmypid()) {
            return false;
        }
        if ($this->in !== '') {
            return false;
        }
        $r = [$this->socket];
        $w = null;
        $e = null;

        return @stream_select($r, $w, $e, 0, 0) === 0;
    }

    private function connect(float $deadline): void
    {
        $left = $deadline - microtime(true);
        if ($left <= 0) {
            throw $this->timedOut();
        }
        $limit = min($this->connectTimeout, $left);
        $context = stream_context_create(['socket' => ['tcp_nodelay' => true]]);
        $errno = 0;
        $errstr = '';
        $address = 'tcp://' . $this->host . ':' . $this->port;
        $socket = @stream_socket_client($address, $errno, $errstr, $limit, STREAM_CLIENT_CONNECT, $context);
        if ($socket === false) {
            if (in_array($errno, self::ETIMEDOUT, true) || stripos($errstr, 'timed out') !== false) {
                throw new TimeoutException(sprintf(
                    '%s: could not connect to %s:%d within %s s (%s)',
                    $this->what,
                    $this->host,
                    $this->port,
                    self::seconds($limit),
                    $limit < $this->connectTimeout ? 'the timeout ran out' : 'connect_timeout',
                ));
            }
            throw new ConnectionException(sprintf(
                '%s: cannot connect to %s:%d: %s',
                $this->what,
                $this->host,
                $this->port,
                $errstr !== '' ? $errstr : 'error ' . $errno,
            ));
        }
        // Non-blocking, unbuffered: stream_select() then sees every byte,
        // and no call can block past the deadline.
        stream_set_blocking($socket, false);
        stream_set_read_buffer($socket, 0);
        stream_set_write_buffer($socket, 0);
        $this->socket = $socket;
        $this->ownerPid = getmypid();
        $this->in = '';
        $this->connects++;
    }

    /**
     * Writes the request and reads the answer on the open connection.
     *
     * @throws ConnectionLost
     */
    private function exchange(string $raw, float $deadline): Response
    {
        $this->answerStarted = false;
        try {
            $this->write($raw, $deadline);
        } catch (ConnectionLost $lost) {
            if (!$lost->requestStarted) {
                throw $lost;
            }
            // The server may have answered before reading the whole body (a
            // 413) and closed: that answer, if it can still be read, is the
            // truth to report.
            try {
                return $this->finish($this->readResponse($deadline));
            } catch (ConnectionLost) {
                throw $lost;
            }
        }

        return $this->finish($this->readResponse($deadline));
    }

    /**
     * Keeps the connection only if the answer allows it, and only if nothing
     * follows the answer (bytes nobody asked for would be read as the answer
     * to the next request).
     *
     * @param array{Response, bool} $answer the answer, and whether the server closes
     */
    private function finish(array $answer): Response
    {
        [$response, $close] = $answer;
        if ($close || $this->in !== '') {
            $this->close();
        }

        return $response;
    }

    /**
     * @throws ConnectionLost
     */
    private function write(string $raw, float $deadline): void
    {
        $length = strlen($raw);
        $written = 0;
        while ($written < $length) {
            $chunk = $length <= self::WRITE_CHUNK ? $raw : substr($raw, $written, self::WRITE_CHUNK);
            $n = @fwrite($this->socket, $chunk);
            if ($n === false) {
                $error = error_get_last()['message'] ?? 'write failed';
                throw new ConnectionLost(sprintf(
                    'the connection broke while sending the request (%s)',
                    preg_replace('/^fwrite\(\): /', '', $error),
                ), $written > 0, false);
            }
            if ($n === 0) {
                $this->waitFor(true, $deadline);
                continue;
            }
            $written += $n;
        }
    }

    /**
     * Reads one complete answer. Interim (1xx) answers are skipped.
     *
     * @return array{Response, bool} the answer, and whether the connection ends with it
     *
     * @throws ConnectionLost
     */
    private function readResponse(float $deadline): array
    {
        do {
            $headBytes = 0;
            $statusLine = $this->readLine($deadline, $headBytes);
            if (preg_match('#^HTTP/1\.([01]) (\d{3})(?: (.*))?$#', $statusLine, $m) !== 1) {
                throw new ServerException(sprintf(
                    '%s: the answer is not HTTP/1.x (it begins %s): is the URL that of deferd\'s HTTP API?',
                    $this->what,
                    self::excerpt($statusLine),
                ));
            }
            $minor = (int) $m[1];
            $status = (int) $m[2];
            $reason = $m[3] ?? '';
            $headers = [];
            while (($line = $this->readLine($deadline, $headBytes)) !== '') {
                $colon = strpos($line, ':');
                if ($colon === false || $colon === 0) {
                    throw $this->malformed('malformed header line in the answer: ' . self::excerpt($line));
                }
                $name = strtolower(trim(substr($line, 0, $colon)));
                $value = trim(substr($line, $colon + 1));
                $headers[$name] = isset($headers[$name]) ? $headers[$name] . ', ' . $value : $value;
            }
        } while ($status >= 100 && $status < 200);

        $connection = strtolower($headers['connection'] ?? '');
        $close = $minor === 0 ? !str_contains($connection, 'keep-alive') : str_contains($connection, 'close');
        $encoding = strtolower($headers['transfer-encoding'] ?? '');
        if ($encoding !== '' && $encoding !== 'identity') {
            if (!str_ends_with($encoding, 'chunked')) {
                throw $this->malformed('unsupported Transfer-Encoding in the answer: ' . $encoding);
            }
            $body = $this->readChunked($deadline);
        } elseif (isset($headers['content-length'])) {
            $lengths = array_unique(array_map('trim', explode(',', $headers['content-length'])));
            if (count($lengths) !== 1 || preg_match('/^\d{1,15}$/', $lengths[0]) !== 1) {
                throw $this->malformed('bad Content-Length in the answer: ' . $headers['content-length']);
            }
            $body = $this->readExactly((int) $lengths[0], $deadline);
        } elseif ($status === 204 || $status === 304) {
            $body = '';
        } else {
            $body = $this->readToEnd($deadline);
            $close = true;
        }

        return [new Response($status, $reason, $headers, $body), $close];
    }

    /**
     * @throws ConnectionLost
     */
    private function readChunked(float $deadline): string
    {
        $body = '';
        $headBytes = 0;
        while (true) {
            $line = $this->readLine($deadline, $headBytes);
            if (preg_match('/^([0-9a-fA-F]{1,15})[ \t]*(;.*)?$/', $line, $m) !== 1) {
                throw $this->malformed('bad chunk size in the answer: ' . self::excerpt($line));
            }
            $size = (int) hexdec($m[1]);
            if ($size === 0) {
                while ($this->readLine($deadline, $headBytes) !== '') {
                    // trailer fields are not used
                }

                return $body;
            }
            $body .= $this->readExactly($size, $deadline);
            if ($this->readExactly(2, $deadline) !== "\r\n") {
                throw $this->malformed('a chunk of the answer is longer than announced');
            }
        }
    }

    /**
     * One line of the head, without its CRLF (a bare LF is accepted too).
     *
     * @param int $headBytes bytes of head read so far, to bound it
     *
     * @throws ConnectionLost
     */
    private function readLine(float $deadline, int &$headBytes): string
    {
        $from = 0;
        while (($nl = strpos($this->in, "\n", $from)) === false) {
            if ($headBytes + strlen($this->in) > self::HEAD_MAX) {
                throw $this->malformed(sprintf('the answer\'s head is over %d bytes', self::HEAD_MAX));
            }
            $from = strlen($this->in);
            $this->fill($deadline);
        }
        $headBytes += $nl + 1;
        if ($headBytes > self::HEAD_MAX) {
            throw $this->malformed(sprintf('the answer\'s head is over %d bytes', self::HEAD_MAX));
        }
        $line = substr($this->in, 0, $nl);
        $this->in = (string) substr($this->in, $nl + 1);

        return rtrim($line, "\r");
    }

    /**
     * @throws ConnectionLost
     */
    private function readExactly(int $n, float $deadline): string
    {
        while (strlen($this->in) < $n) {
            $this->fill($deadline);
        }
        $bytes = substr($this->in, 0, $n);
        $this->in = (string) substr($this->in, $n);

        return $bytes;
    }

    /** A body ended by the server closing the connection (HTTP/1.0 style). */
    private function readToEnd(float $deadline): string
    {
        try {
            while (true) {
                $this->fill($deadline);
            }
        } catch (ConnectionLost) {
            $bytes = $this->in;
            $this->in = '';

            return $bytes;
        }
    }

    /**
     * Appends what the server sent next to $this->in, waiting for it until
     * the deadline.
     *
     * It waits first and reads after: a read is only wanted once the
     * socket is readable, and trying one before (an empty non-blocking
     * read, then feof()'s own poll and peek) cost three system calls more
     * per answer - a quarter of dispatch()'s time in PHP.
     *
     * @throws ConnectionLost  the server closed the connection
     * @throws TimeoutException
     */
    private function fill(float $deadline): void
    {
        while (true) {
            $this->waitFor(false, $deadline);
            $chunk = @fread($this->socket, self::READ_CHUNK);
            if (is_string($chunk) && $chunk !== '') {
                $this->in .= $chunk;
                $this->answerStarted = true;

                return;
            }
            if (feof($this->socket)) {
                throw new ConnectionLost(
                    $this->answerStarted
                        ? 'the connection was closed in the middle of the answer'
                        : 'the connection was closed before an answer came',
                    true,
                    $this->answerStarted,
                );
            }
        }
    }

    /**
     * Waits until the socket can be read (or written), or throws when the
     * deadline passes.
     */
    private function waitFor(bool $write, float $deadline): void
    {
        while (true) {
            $left = $deadline - microtime(true);
            if ($left <= 0) {
                throw $this->timedOut();
            }
            $r = $write ? null : [$this->socket];
            $w = $write ? [$this->socket] : null;
            $e = null;
            $sec = (int) $left;
            $n = @stream_select($r, $w, $e, $sec, (int) (($left - $sec) * 1e6) + 1);
            if ($n > 0) {
                return;
            }
            if ($n === false) {
                // Interrupted by a signal (or worse); the deadline still bounds the loop.
                usleep(1000);
            }
        }
    }

    /** An answer this client cannot read: the connection is closed by the caller. */
    private function malformed(string $detail): ServerException
    {
        return new ServerException($this->what . ': ' . $detail);
    }

    private function timedOut(): TimeoutException
    {
        $this->close();

        return new TimeoutException(sprintf(
            '%s: no complete answer from %s:%d within %s s (the timeout option); the connection was closed',
            $this->what,
            $this->host,
            $this->port,
            self::seconds($this->timeout),
        ));
    }

    private function lost(ConnectionLost $lost): ConnectionException
    {
        $outcome = $lost->requestStarted
            ? 'the server may or may not have carried out the request'
            : 'the request was not sent';

        return new ConnectionException(sprintf(
            '%s: %s:%d: %s; %s',
            $this->what,
            $this->host,
            $this->port,
            $lost->getMessage(),
            $outcome,
        ), null, null, null, $lost);
    }

    private static function seconds(float $s): string
    {
        return rtrim(rtrim(sprintf('%.3f', $s), '0'), '.');
    }

    private static function excerpt(string $bytes): string
    {
        $cut = substr($bytes, 0, 80);

        $json = json_encode($cut, JSON_UNESCAPED_SLASHES | JSON_INVALID_UTF8_SUBSTITUTE);

        return $json . (strlen($bytes) > 80 ? '...' : '');
    }
}
