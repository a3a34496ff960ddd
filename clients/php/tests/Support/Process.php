<?php

declare(strict_types=1);

namespace Defer\Tests\Support;

/**
 * Starting child processes that do not inherit the test's sockets.
 *
 * proc_open() passes every open descriptor to the child, and PHP's sockets
 * are not close-on-exec: a server started while a test client is connected
 * would hold a copy of that client's socket, so closing it in the test would
 * not close the connection, and the server would count one connection too
 * many. The child therefore starts as bash, closes everything above stderr,
 * and execs the real command (same pid).
 */
final class Process
{
    private const CLOSE_THEN_EXEC = 'for fd in /proc/$$/fd/*; do fd=${fd##*/}; '
        . 'if [ "$fd" -gt 2 ]; then eval "exec $fd>&-" 2>/dev/null; fi; done; exec "$@"';

    /**
     * @param list<string>        $command
     * @param array<int, mixed>   $descriptors as for proc_open()
     * @param array<int, mixed>   $pipes       filled as by proc_open()
     *
     * @return resource
     */
    public static function open(array $command, array $descriptors, ?array &$pipes = null)
    {
        $process = proc_open(
            array_merge(['/bin/bash', '-c', self::CLOSE_THEN_EXEC, 'bash'], $command),
            $descriptors,
            $pipes,
        );
        if (!is_resource($process)) {
            throw new \RuntimeException('cannot start ' . implode(' ', $command));
        }

        return $process;
    }

    /** A loopback TCP port nobody listens on at this moment. */
    public static function freePort(): int
    {
        $server = stream_socket_server('tcp://127.0.0.1:0', $errno, $errstr);
        if ($server === false) {
            throw new \RuntimeException("cannot pick a free port: $errstr");
        }
        $name = (string) stream_socket_get_name($server, false);
        fclose($server);

        return (int) substr($name, strrpos($name, ':') + 1);
    }
}
