<?php

declare(strict_types=1);

namespace Defer\Tests\Support;

/**
 * Runs fake-http-server.php with a plan (see there) and reads back what it
 * received. Used only where a real deferd cannot produce the situation.
 */
final class FakeHttpServer
{
    /** @var resource */
    private $process;
    /** @var resource */
    private $stdin;
    public readonly int $port;
    private readonly string $log;

    /**
     * @param list<array<string, mixed>> $plan
     */
    public function __construct(array $plan)
    {
        $base = Servers::dir() . '/fake-' . bin2hex(random_bytes(4));
        file_put_contents($base . '.plan.json', json_encode($plan, JSON_THROW_ON_ERROR));
        $this->log = $base . '.log';
        touch($this->log);
        $this->process = Process::open(
            [PHP_BINARY, __DIR__ . '/fake-http-server.php', $base . '.plan.json', $this->log],
            [0 => ['pipe', 'r'], 1 => ['pipe', 'w'], 2 => ['file', $base . '.stderr', 'w']],
            $pipes,
        );
        $this->stdin = $pipes[0];
        stream_set_timeout($pipes[1], 10);
        $line = fgets($pipes[1]);
        fclose($pipes[1]);
        if ($line === false || preg_match('/^\d+$/', trim($line)) !== 1) {
            $this->stop();
            throw new \RuntimeException('the fake HTTP server did not start: ' . file_get_contents($base . '.stderr'));
        }
        $this->port = (int) trim($line);
    }

    public function __destruct()
    {
        $this->stop();
    }

    public function url(): string
    {
        return 'http://127.0.0.1:' . $this->port;
    }

    /**
     * The requests received so far, in order.
     *
     * @return list<array{connection: int, request: string, head: string, body: string}>
     */
    public function requests(): array
    {
        $requests = [];
        foreach (file($this->log, FILE_IGNORE_NEW_LINES | FILE_SKIP_EMPTY_LINES) ?: [] as $line) {
            $requests[] = json_decode($line, true, 512, JSON_THROW_ON_ERROR);
        }

        return $requests;
    }

    public function stop(): void
    {
        if (is_resource($this->stdin)) {
            fclose($this->stdin);
        }
        if (is_resource($this->process)) {
            proc_terminate($this->process);
            proc_close($this->process);
        }
    }

    /**
     * An HTTP/1.1 answer with a JSON (or any) body, framed by Content-Length.
     *
     * @param array<string, string> $headers
     */
    public static function answer(int $status, string $body, array $headers = []): string
    {
        $head = "HTTP/1.1 $status Whatever\r\nContent-Type: application/json\r\nContent-Length: " . strlen($body) . "\r\n";
        foreach ($headers as $name => $value) {
            $head .= "$name: $value\r\n";
        }

        return $head . "\r\n" . $body;
    }

    /** A task object as deferd renders it. */
    public static function taskJson(int $id, string $queue = 'q'): string
    {
        return json_encode([
            'id' => $id, 'queue' => $queue, 'state' => 'ready', 'priority' => 1024, 'ttr' => 60,
            'attempts' => 0, 'max_attempts' => 0, 'key' => null, 'created_at' => '2026-11-22T14:00:00.000Z',
            'run_at' => null, 'finished_at' => null, 'last_error' => null, 'payload' => ['n' => $id],
        ], JSON_THROW_ON_ERROR);
    }
}
