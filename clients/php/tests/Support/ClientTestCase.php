<?php

declare(strict_types=1);

namespace Defer\Tests\Support;

use Defer\Client;
use Defer\Exception\DeferException;
use PHPUnit\Framework\TestCase;

/**
 * Base of the client's tests: clients of the shared server (closed after each
 * test, so that no connection outlives its test), a queue name of the test's
 * own (the server is shared), and a worker's beanstalk connection.
 */
abstract class ClientTestCase extends TestCase
{
    /** @var list<Client> */
    private array $clients = [];
    /** @var list<Beanstalk> */
    private array $workers = [];
    /** @var list<Deferd> servers of the test's own, stopped in tearDown if the test did not */
    private array $servers = [];
    /** @var list<FakeHttpServer> */
    private array $fakes = [];

    protected function tearDown(): void
    {
        foreach ($this->clients as $client) {
            $client->close();
        }
        foreach ($this->workers as $worker) {
            $worker->close();
        }
        foreach ($this->fakes as $fake) {
            $fake->stop();
        }
        $this->clients = $this->workers = $this->fakes = [];
        $servers = $this->servers;
        $this->servers = [];
        foreach ($servers as $server) {
            if ($server->isRunning()) {
                $problems = Servers::stop($server);
                $this->assertSame([], $problems, implode("\n", $problems));
            }
        }
    }

    /**
     * A client of the shared server (or of $url), with the shared server's max_body.
     *
     * @param array<string, mixed> $options
     */
    protected function client(array $options = [], ?string $url = null): Client
    {
        $client = new Client($options + [
            'url' => $url ?? Servers::shared()->url(),
            'max_body' => Servers::SHARED_MAX_BODY,
        ]);
        $this->clients[] = $client;

        return $client;
    }

    /** A worker connection to the shared server (or to $server), watching only $tube if given. */
    protected function worker(?string $tube = null, ?Deferd $server = null): Beanstalk
    {
        $worker = new Beanstalk(($server ?? Servers::shared())->port);
        if ($tube !== null) {
            $worker->watchOnly($tube);
        }
        $this->workers[] = $worker;

        return $worker;
    }

    /**
     * A server of the test's own; tearDown stops and checks it if the test did not.
     *
     * @param list<string> $args
     */
    protected function server(array $args = [], ?string $dataDir = null): Deferd
    {
        $server = Servers::start($args, $dataDir);
        $this->servers[] = $server;

        return $server;
    }

    /** Stops a server of the test's own and fails the test on any problem. */
    protected function assertStopsCleanly(Deferd $server): void
    {
        $problems = Servers::stop($server);
        $this->assertSame([], $problems, implode("\n", $problems));
    }

    /**
     * @param list<array<string, mixed>> $plan
     */
    protected function fake(array $plan): FakeHttpServer
    {
        $fake = new FakeHttpServer($plan);
        $this->fakes[] = $fake;

        return $fake;
    }

    /**
     * Runs $call under a generous alarm, so that a call that hangs (the bug a
     * timeout test looks for) fails the test instead of stalling the run. A
     * guard, not a measure: how fast the call gives up is not asserted.
     *
     * @template T
     *
     * @param callable(): T $call
     *
     * @return T
     */
    protected function failIfHung(callable $call, int $seconds = 30): mixed
    {
        $async = pcntl_async_signals(true);
        pcntl_signal(SIGALRM, static function (): void {
            throw new \RuntimeException('the call hung: it did not return or throw before the guard alarm');
        });
        pcntl_alarm($seconds);
        try {
            return $call();
        } finally {
            pcntl_alarm(0);
            pcntl_signal(SIGALRM, SIG_DFL);
            pcntl_async_signals($async);
        }
    }

    /** A queue name no other test uses. */
    protected function queueName(string $hint = 'q'): string
    {
        return $hint . '-' . bin2hex(random_bytes(4));
    }

    /**
     * Runs $call, asserts it throws exactly $class, and returns the exception.
     *
     * @template T of \Throwable
     *
     * @param class-string<T> $class
     *
     * @return T
     */
    protected function expectThrown(string $class, callable $call): \Throwable
    {
        try {
            $call();
        } catch (\Throwable $e) {
            $this->assertSame($class, $e::class, 'thrown: ' . $e::class . ': ' . $e->getMessage());

            return $e;
        }
        $this->fail("expected $class, but nothing was thrown");
    }

    /**
     * Asserts what a DeferException of a server answer carries: the status,
     * the server's code, and the server's message, also inside getMessage().
     */
    protected function assertServerError(DeferException $e, int $status, string $code, string $messagePart): void
    {
        $this->assertSame($status, $e->getStatus());
        $this->assertSame($status, $e->getCode());
        $this->assertSame($code, $e->getErrorCode());
        $this->assertNotNull($e->getServerMessage());
        $this->assertStringContainsString($messagePart, (string) $e->getServerMessage());
        $this->assertStringContainsString((string) $e->getServerMessage(), $e->getMessage());
    }
}
