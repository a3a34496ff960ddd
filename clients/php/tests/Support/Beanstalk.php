<?php

declare(strict_types=1);

namespace Defer\Tests\Support;

/**
 * A worker's side of deferd, over the beanstalk protocol on a raw socket:
 * what the tests need to reserve, delete, release and bury tasks, so that
 * they can check what a worker receives and put tasks in every state.
 */
final class Beanstalk
{
    /** @var resource */
    private $socket;

    public function __construct(int $port)
    {
        $socket = stream_socket_client('tcp://127.0.0.1:' . $port, $errno, $errstr, 5.0);
        if ($socket === false) {
            throw new \RuntimeException("cannot connect to the beanstalk port $port: $errstr");
        }
        stream_set_timeout($socket, 10);
        $this->socket = $socket;
    }

    public function __destruct()
    {
        $this->close();
    }

    public function close(): void
    {
        if (is_resource($this->socket)) {
            fclose($this->socket);
        }
    }

    /** Sends one command line and returns the first line of the reply, without CRLF. */
    public function command(string $line): string
    {
        fwrite($this->socket, $line . "\r\n");
        $reply = fgets($this->socket);
        if ($reply === false) {
            throw new \RuntimeException("no reply to '$line'");
        }

        return rtrim($reply, "\r\n");
    }

    /** Watches only this tube. */
    public function watchOnly(string $tube): void
    {
        $this->expect('watch ' . $tube, '/^WATCHING \d+$/');
        if ($tube !== 'default') {
            $this->expect('ignore default', '/^WATCHING 1$/');
        }
    }

    /**
     * Reserves a ready task of the watched tubes, waiting at most $seconds.
     *
     * @return array{int, string}|null id and body, or null when none came
     */
    public function reserve(int $seconds = 0): ?array
    {
        $reply = $this->command('reserve-with-timeout ' . $seconds);
        if ($reply === 'TIMED_OUT') {
            return null;
        }
        if (preg_match('/^RESERVED (\d+) (\d+)$/', $reply, $m) !== 1) {
            throw new \RuntimeException("unexpected reply to reserve: $reply");
        }
        $body = '';
        $want = (int) $m[2] + 2;
        while (strlen($body) < $want) {
            $chunk = fread($this->socket, $want - strlen($body));
            if ($chunk === false || $chunk === '') {
                throw new \RuntimeException('connection closed in the middle of a job body');
            }
            $body .= $chunk;
        }

        return [(int) $m[1], substr($body, 0, -2)];
    }

    public function delete(int $id): void
    {
        $this->expect('delete ' . $id, '/^DELETED$/');
    }

    public function release(int $id, int $priority = 1024, int $delay = 0): void
    {
        $this->expect("release $id $priority $delay", '/^(RELEASED|BURIED)$/');
    }

    public function bury(int $id, int $priority = 1024): void
    {
        $this->expect("bury $id $priority", '/^BURIED$/');
    }

    private function expect(string $line, string $pattern): void
    {
        $reply = $this->command($line);
        if (preg_match($pattern, $reply) !== 1) {
            throw new \RuntimeException("unexpected reply to '$line': $reply");
        }
    }
}
