<?php
// One server process under test: started on a free loopback port, stopped
// with SIGTERM, and checked for a clean exit and clean sanitizer output.

declare(strict_types=1);

namespace Defer\PhpTests;

final class Server
{
    /** Sanitizer reports that must never appear on the server's stderr. */
    private const BAD_STDERR = [
        'AddressSanitizer',
        'LeakSanitizer',
        'UndefinedBehaviorSanitizer',
        'runtime error:',
    ];
    private const START_ATTEMPTS = 5;
    private const START_DEADLINE_S = 20.0;
    private const STOP_DEADLINE_S = 30.0;

    /** @var resource|null */
    private $proc;
    /** @var int */
    public $port = 0;
    /** @var int */
    public $pid = 0;
    /** @var string */
    private $bin;
    /** @var string[] */
    private $extraArgs;
    /** @var string */
    private $dir;
    /** @var string */
    public $stderrPath = '';
    /** @var bool the binary is the reference beanstalkd (dies of SIGTERM) */
    private $reference;
    /** @var array{exitcode:int,signaled:bool,termsig:int}|null */
    private $exit = null;

    /**
     * @param string[] $extraArgs flags beyond -l/-p, e.g. ['-z', '100']
     */
    public function __construct(string $bin, array $extraArgs, string $dir, bool $reference)
    {
        $this->bin = $bin;
        $this->extraArgs = $extraArgs;
        $this->dir = $dir;
        $this->reference = $reference;
    }

    /** A loopback port nobody listens on right now. */
    private static function freePort(): int
    {
        $s = stream_socket_server('tcp://127.0.0.1:0', $errno, $errstr);
        if ($s === false) {
            throw new \RuntimeException("cannot pick a free port: $errstr");
        }
        $name = stream_socket_get_name($s, false);
        fclose($s);
        return (int)substr($name, strrpos($name, ':') + 1);
    }

    /**
     * Starts the server and waits (bounded) until it answers "stats" with its
     * own pid, so a foreign server that took the port is never mistaken for it.
     */
    public function start(): void
    {
        $lastErr = '';
        for ($attempt = 1; $attempt <= self::START_ATTEMPTS; $attempt++) {
            $this->port = self::freePort();
            $tag = $this->port . '-' . $attempt;
            $this->stderrPath = "{$this->dir}/server-{$tag}.stderr";
            $cmd = array_merge([$this->bin, '-l', '127.0.0.1', '-p', (string)$this->port], $this->extraArgs);
            $proc = proc_open(Spawn::command($cmd), [
                0 => ['file', '/dev/null', 'r'],
                1 => ['file', "{$this->dir}/server-{$tag}.stdout", 'w'],
                2 => ['file', $this->stderrPath, 'w'],
            ], $pipes);
            if (!is_resource($proc)) {
                throw new \RuntimeException("cannot start {$this->bin}");
            }
            $this->proc = $proc;
            $this->pid = proc_get_status($proc)['pid'];
            $this->exit = null;
            $deadline = microtime(true) + self::START_DEADLINE_S;
            while (microtime(true) < $deadline) {
                $st = $this->status();
                if (!$st['running']) {
                    break;
                }
                if ($this->answersWithOurPid()) {
                    return;
                }
                usleep(20000);
            }
            $lastErr = (string)@file_get_contents($this->stderrPath);
            if ($this->status()['running']) {
                $this->kill();
                throw new \RuntimeException(sprintf(
                    "%s did not accept connections on 127.0.0.1:%d within %.0f s; stderr:\n%s",
                    $this->bin, $this->port, self::START_DEADLINE_S, $lastErr
                ));
            }
            // Exited: most likely the port was taken meanwhile; try another.
            $this->proc = null;
        }
        throw new \RuntimeException("{$this->bin} failed to start " . self::START_ATTEMPTS
            . " times; last stderr:\n$lastErr");
    }

    private function answersWithOurPid(): bool
    {
        $s = @stream_socket_client("tcp://127.0.0.1:{$this->port}", $errno, $errstr, 0.5);
        if ($s === false) {
            return false;
        }
        stream_set_timeout($s, 5);
        fwrite($s, "stats\r\n");
        $head = fgets($s);
        $ok = false;
        if (is_string($head) && preg_match('/^OK (\d+)\r\n$/', $head, $m)) {
            $body = '';
            while (strlen($body) < (int)$m[1] + 2) {
                $chunk = fread($s, (int)$m[1] + 2 - strlen($body));
                if ($chunk === false || $chunk === '') {
                    break;
                }
                $body .= $chunk;
            }
            $ok = (bool)preg_match('/^pid: ' . $this->pid . '$/m', $body);
        }
        fclose($s);
        return $ok;
    }

    /** proc_get_status, remembering the exit status the first time it is seen. */
    private function status(): array
    {
        $st = proc_get_status($this->proc);
        if (!$st['running'] && $this->exit === null) {
            $this->exit = [
                'exitcode' => $st['exitcode'],
                'signaled' => $st['signaled'],
                'termsig' => $st['termsig'],
            ];
        }
        return $st;
    }

    public function isRunning(): bool
    {
        return $this->proc !== null && $this->status()['running'];
    }

    public function signal(int $sig): void
    {
        posix_kill($this->pid, $sig);
    }

    /** SIGSTOP, returning once the kernel reports the process stopped. */
    public function pause(): void
    {
        $this->signal(SIGSTOP);
        $deadline = microtime(true) + 10;
        while (microtime(true) < $deadline) {
            $stat = (string)@file_get_contents("/proc/{$this->pid}/stat");
            // The state follows the parenthesised command name.
            if (preg_match('/\) ([A-Za-z]) /', $stat, $m) && ($m[1] === 'T' || $m[1] === 't')) {
                return;
            }
            usleep(1000);
        }
        $this->signal(SIGCONT);
        throw new \RuntimeException("server {$this->pid} did not stop after SIGSTOP");
    }

    /**
     * Has a helper process continue the server (SIGCONT) after $delayS: the
     * test stops it with pause(), lets clients act, then calls this
     * before a command that blocks until the server runs again. Returns the
     * helper, to be passed to resume() (which also sends SIGCONT itself, so
     * the server is never left stopped). Start the helper only after the
     * clients' sockets are closed: the child holds copies of open ones for a
     * moment.
     *
     * @return resource
     */
    public function continueAfter(float $delayS)
    {
        $helper = proc_open(Spawn::command(['/bin/sh', '-c', sprintf('sleep %.3f; kill -CONT %d', $delayS, $this->pid)]),
            [0 => ['file', '/dev/null', 'r'], 1 => ['file', '/dev/null', 'w'], 2 => ['file', '/dev/null', 'w']], $pipes);
        if (!is_resource($helper)) {
            $this->signal(SIGCONT);
            throw new \RuntimeException('cannot start the SIGCONT helper');
        }
        return $helper;
    }

    /** @param resource|null $helper from continueAfter() */
    public function resume($helper): void
    {
        $this->signal(SIGCONT);
        if (is_resource($helper)) {
            proc_close($helper);
        }
    }

    private function kill(): void
    {
        posix_kill($this->pid, 9);
        while ($this->status()['running']) {
            usleep(10000);
        }
        proc_close($this->proc);
        $this->proc = null;
    }

    /**
     * SIGTERM, wait (bounded) for the exit, and return every problem found:
     * an exit other than 0 (for the reference beanstalkd, death by SIGTERM
     * is its normal way out) and sanitizer reports on stderr. Empty = clean.
     *
     * @return string[]
     */
    public function stop(): array
    {
        if ($this->proc === null) {
            return [];
        }
        $problems = [];
        if ($this->status()['running']) {
            $this->signal(15);
            $deadline = microtime(true) + self::STOP_DEADLINE_S;
            while ($this->status()['running'] && microtime(true) < $deadline) {
                usleep(10000);
            }
            if ($this->status()['running']) {
                $problems[] = sprintf('did not exit within %.0f s of SIGTERM (killed)', self::STOP_DEADLINE_S);
                $this->kill();
            }
        } else {
            $problems[] = 'had already exited before SIGTERM';
        }
        if ($this->proc !== null) {
            proc_close($this->proc);
            $this->proc = null;
        }
        $e = $this->exit;
        if ($e !== null) {
            $cleanByReference = $this->reference && $e['signaled'] && $e['termsig'] === 15;
            if ($e['signaled'] && !$cleanByReference) {
                $problems[] = "was killed by signal {$e['termsig']}";
            } elseif (!$e['signaled'] && $e['exitcode'] !== 0) {
                $problems[] = "exited with status {$e['exitcode']}";
            }
        }
        $err = (string)@file_get_contents($this->stderrPath);
        foreach (self::BAD_STDERR as $needle) {
            if (strpos($err, $needle) !== false) {
                $problems[] = "stderr contains '$needle'";
            }
        }
        if ($problems) {
            $problems[] = "stderr ({$this->stderrPath}):\n" . $err;
        }
        return $problems;
    }
}
