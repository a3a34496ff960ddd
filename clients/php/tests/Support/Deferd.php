<?php

declare(strict_types=1);

namespace Defer\Tests\Support;

/**
 * One real deferd under test: started on free loopback ports with --http and
 * a data directory, stopped with SIGTERM and checked: it must exit with
 * status 0 and its stderr must hold no sanitizer report.
 */
final class Deferd
{
    private const BAD_STDERR = ['AddressSanitizer', 'LeakSanitizer', 'UndefinedBehaviorSanitizer', 'runtime error:'];
    private const START_ATTEMPTS = 5;
    private const START_SECONDS = 20.0;
    private const STOP_SECONDS = 30.0;

    public int $port = 0;
    public int $httpPort = 0;
    public int $pid = 0;
    public string $stderrPath = '';
    /** @var resource|null */
    private $process = null;
    /** @var array{exitcode: int, signaled: bool, termsig: int}|null */
    private ?array $exit = null;
    private int $starts = 0;

    /**
     * @param list<string> $args flags beyond -l, -p, --http and -b
     */
    public function __construct(
        private readonly string $binary,
        public readonly string $dataDir,
        private readonly string $logDir,
        private readonly array $args = [],
    ) {
    }

    public function url(): string
    {
        return 'http://127.0.0.1:' . $this->httpPort;
    }

    /**
     * Starts the server and waits (bounded) until GET /healthz answers and the
     * beanstalk side reports this process's pid, so that another program that
     * took one of the ports meanwhile is never mistaken for it.
     */
    public function start(): void
    {
        $last = '';
        for ($attempt = 1; $attempt <= self::START_ATTEMPTS; $attempt++) {
            $this->port = Process::freePort();
            $this->httpPort = Process::freePort();
            if ($this->launch()) {
                return;
            }
            $last = $this->stderr();
        }
        throw new \RuntimeException(sprintf(
            "%s did not start in %d attempts; last stderr:\n%s",
            $this->binary,
            self::START_ATTEMPTS,
            $last,
        ));
    }

    /** Stops the server and starts it again on the same ports and data directory. */
    public function restart(): array
    {
        $problems = $this->stop();
        for ($attempt = 1; $attempt <= self::START_ATTEMPTS; $attempt++) {
            if ($this->launch()) {
                return $problems;
            }
            usleep(200000); // the port may be held for a moment after the exit
        }
        throw new \RuntimeException("{$this->binary} did not start again on ports {$this->port}/{$this->httpPort}:\n" . $this->stderr());
    }

    private function launch(): bool
    {
        $this->starts++;
        $this->stderrPath = sprintf('%s/deferd-%d-%d.stderr', $this->logDir, $this->httpPort, $this->starts);
        $command = array_merge([
            $this->binary,
            '-l', '127.0.0.1',
            '-p', (string) $this->port,
            '--http', '127.0.0.1:' . $this->httpPort,
            '-b', $this->dataDir,
        ], $this->args);
        $this->process = Process::open($command, [
            0 => ['file', '/dev/null', 'r'],
            1 => ['file', $this->stderrPath . '.out', 'w'],
            2 => ['file', $this->stderrPath, 'w'],
        ]);
        $this->exit = null;
        $this->pid = proc_get_status($this->process)['pid'];
        $deadline = microtime(true) + self::START_SECONDS;
        while (microtime(true) < $deadline) {
            if (!$this->isRunning()) {
                proc_close($this->process);
                $this->process = null;

                return false; // most likely a port was taken meanwhile
            }
            if ($this->healthy() && $this->beanstalkPid() === $this->pid) {
                return true;
            }
            usleep(20000);
        }
        $this->kill();
        throw new \RuntimeException(sprintf(
            "%s did not answer GET /healthz on %s within %.0f s; stderr:\n%s",
            $this->binary,
            $this->url(),
            self::START_SECONDS,
            $this->stderr(),
        ));
    }

    /** GET /healthz answered 200 or 503 (draining). */
    private function healthy(): bool
    {
        $s = @stream_socket_client('tcp://127.0.0.1:' . $this->httpPort, $errno, $errstr, 1.0);
        if ($s === false) {
            return false;
        }
        stream_set_timeout($s, 5);
        fwrite($s, "GET /healthz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
        $answer = (string) stream_get_contents($s);
        fclose($s);

        return preg_match('#^HTTP/1\.1 (200|503) #', $answer) === 1;
    }

    private function beanstalkPid(): int
    {
        $s = @stream_socket_client('tcp://127.0.0.1:' . $this->port, $errno, $errstr, 1.0);
        if ($s === false) {
            return 0;
        }
        stream_set_timeout($s, 5);
        fwrite($s, "stats\r\n");
        $head = (string) fgets($s);
        $pid = 0;
        if (preg_match('/^OK (\d+)\r\n$/', $head, $m) === 1) {
            $body = (string) stream_get_contents($s, (int) $m[1] + 2);
            if (preg_match('/^pid: (\d+)$/m', $body, $p) === 1) {
                $pid = (int) $p[1];
            }
        }
        fclose($s);

        return $pid;
    }

    public function isRunning(): bool
    {
        if ($this->process === null) {
            return false;
        }
        $status = proc_get_status($this->process);
        if (!$status['running'] && $this->exit === null) {
            // proc_get_status() reports the exit code only the first time.
            $this->exit = ['exitcode' => $status['exitcode'], 'signaled' => $status['signaled'], 'termsig' => $status['termsig']];
        }

        return $status['running'];
    }

    public function signal(int $signal): void
    {
        posix_kill($this->pid, $signal);
    }

    public function stderr(): string
    {
        return (string) @file_get_contents($this->stderrPath);
    }

    /**
     * SIGTERM, a bounded wait for the exit, and every problem found: no clean
     * exit, or a sanitizer report on stderr. Empty means clean.
     *
     * @return list<string>
     */
    public function stop(): array
    {
        if ($this->process === null) {
            return [];
        }
        $problems = [];
        if ($this->isRunning()) {
            $this->signal(SIGTERM);
            $deadline = microtime(true) + self::STOP_SECONDS;
            while ($this->isRunning() && microtime(true) < $deadline) {
                usleep(10000);
            }
            if ($this->isRunning()) {
                $problems[] = sprintf('did not exit within %.0f s of SIGTERM (killed)', self::STOP_SECONDS);
                $this->kill();
            }
        } else {
            $problems[] = 'had exited before it was sent SIGTERM';
        }
        if ($this->process !== null) {
            proc_close($this->process);
            $this->process = null;
        }
        $exit = $this->exit;
        if ($exit !== null && $exit['signaled']) {
            $problems[] = 'was killed by signal ' . $exit['termsig'];
        } elseif ($exit !== null && $exit['exitcode'] !== 0) {
            $problems[] = 'exited with status ' . $exit['exitcode'];
        }
        $stderr = $this->stderr();
        foreach (self::BAD_STDERR as $needle) {
            if (str_contains($stderr, $needle)) {
                $problems[] = "printed '$needle'";
            }
        }
        if ($problems !== []) {
            return [sprintf(
                "deferd (pid %d, %s): %s; stderr (%s):\n%s",
                $this->pid,
                $this->url(),
                implode('; ', $problems),
                $this->stderrPath,
                $stderr,
            )];
        }

        return [];
    }

    private function kill(): void
    {
        posix_kill($this->pid, SIGKILL);
        while ($this->isRunning()) {
            usleep(10000);
        }
        proc_close($this->process);
        $this->process = null;
    }
}
