<?php
// proc_open lets the child inherit every descriptor of this process that is
// not close-on-exec, and PHP's sockets are not: a server or worker started
// while test clients are connected would keep their connections open after
// the test closes them. So children are started through bash, which closes
// every descriptor above 2 and then execs the real command (same pid).

declare(strict_types=1);

namespace Defer\PhpTests;

final class Spawn
{
    private const CLOSE_AND_EXEC = 'for fd in /proc/$$/fd/*; do fd=${fd##*/}; '
        . 'if [ "$fd" -gt 2 ]; then eval "exec $fd>&-" 2>/dev/null; fi; done; exec "$@"';

    /**
     * @param string[] $cmd
     * @return string[]
     */
    public static function command(array $cmd): array
    {
        return array_merge(['/bin/bash', '-c', self::CLOSE_AND_EXEC, 'bash'], $cmd);
    }
}
