<?php
// Runs lib/reserve_worker.php as a separate process (see there).

declare(strict_types=1);

namespace Defer\PhpTests;

final class Worker
{
    /** @var resource */
    private $proc;
    /** @var resource[] */
    private $pipes;

    public function __construct(int $port, array $tubes, string $mode)
    {
        $cmd = [PHP_BINARY, __DIR__ . '/reserve_worker.php', (string)$port, implode(',', $tubes), $mode];
        $proc = proc_open(Spawn::command($cmd), [0 => ['pipe', 'r'], 1 => ['pipe', 'w'], 2 => ['file', Harness::$dir . '/worker.stderr', 'a']], $pipes);
        if (!is_resource($proc)) {
            throw new \RuntimeException('cannot start the worker');
        }
        $this->proc = $proc;
        $this->pipes = $pipes;
    }

    /** The worker's result, or null if none came within the bound (a hang guard). */
    public function result(float $boundS = 30.0): ?array
    {
        $r = [$this->pipes[1]];
        $w = $e = null;
        $sec = (int)$boundS;
        if (stream_select($r, $w, $e, $sec, (int)(($boundS - $sec) * 1e6)) < 1) {
            return null;
        }
        $line = fgets($this->pipes[1]);
        return $line === false ? null : json_decode($line, true);
    }

    /** Ends the worker (its connection closes, releasing what it reserved). */
    public function close(): void
    {
        if ($this->proc === null) {
            return;
        }
        fclose($this->pipes[0]);
        fclose($this->pipes[1]);
        $st = proc_get_status($this->proc);
        if ($st['running']) {
            $deadline = microtime(true) + 10;
            while (proc_get_status($this->proc)['running'] && microtime(true) < $deadline) {
                usleep(10000);
            }
            if (proc_get_status($this->proc)['running']) {
                proc_terminate($this->proc, 9);
            }
        }
        proc_close($this->proc);
        $this->proc = null;
    }

    public function __destruct()
    {
        $this->close();
    }
}
