<?php

/*
 * The rooms' network, standing in for the firewall a school would drive:
 * which rooms are closed, until when, and by which closing - a random token
 * that the restore task carries, so that a restore only ever undoes the
 * closing it was scheduled for - plus the last things that happened, for the
 * page. All in one JSON file, changed under an exclusive lock: the page
 * (php -S) and the restore tasks (php-fpm) change it at the same time.
 */

declare(strict_types=1);

final class Rooms
{
    private const EVENTS_KEPT = 12;

    /** @param list<string> $names */
    public function __construct(private readonly string $file, private readonly array $names)
    {
    }

    /**
     * Every room, and the last events (newest first).
     *
     * @return array{rooms: array<string, array{closed: bool, until: ?int, token: ?string}>, events: list<array{at: int, text: string}>}
     */
    public function read(): array
    {
        return $this->locked(LOCK_SH, static fn (array $state): array => [$state, $state]);
    }

    /**
     * Closes the room until $until (Unix seconds) by the closing $token.
     *
     * @return array{closed: bool, until: ?int, token: ?string} the room as it was, for undo()
     */
    public function close(string $room, int $until, string $token): array
    {
        $this->known($room);
        return $this->change(static function (array $state) use ($room, $until, $token): array {
            $before = $state['rooms'][$room];
            $state['rooms'][$room] = ['closed' => true, 'until' => $until, 'token' => $token];

            return [$state, $before];
        });
    }

    /**
     * Puts the room back as close() found it, unless it changed again since.
     *
     * @param array{closed: bool, until: ?int, token: ?string} $before
     */
    public function undo(string $room, string $token, array $before): void
    {
        $this->known($room);
        $this->change(static function (array $state) use ($room, $token, $before): array {
            if ($state['rooms'][$room]['token'] === $token) {
                $state['rooms'][$room] = $before;
            }

            return [$state, null];
        });
    }

    /** Opens the room now, whatever closed it. */
    public function open(string $room, string $event): void
    {
        $this->known($room);
        $this->change(static function (array $state) use ($room, $event): array {
            $state['rooms'][$room] = ['closed' => false, 'until' => null, 'token' => null];

            return [self::noted($state, $event), null];
        });
    }

    /**
     * The restore of the closing $token: opens the room if that closing is
     * still the one in force. False when the room was opened by hand, or
     * closed again with another restore, since.
     */
    public function restore(string $room, string $token, string $event): bool
    {
        $this->known($room);
        return $this->change(static function (array $state) use ($room, $token, $event): array {
            if ($state['rooms'][$room]['token'] !== $token) {
                return [$state, false];
            }
            $state['rooms'][$room] = ['closed' => false, 'until' => null, 'token' => null];

            return [self::noted($state, $event), true];
        });
    }

    /** Adds a line to what happened. */
    public function note(string $event): void
    {
        $this->change(static fn (array $state): array => [self::noted($state, $event), null]);
    }

    private function known(string $room): void
    {
        if (!in_array($room, $this->names, true)) {
            throw new InvalidArgumentException(sprintf('there is no room %s (rooms: %s)', json_encode($room), implode(', ', $this->names)));
        }
    }

    private static function noted(array $state, string $event): array
    {
        array_unshift($state['events'], ['at' => time(), 'text' => $event]);
        $state['events'] = array_slice($state['events'], 0, self::EVENTS_KEPT);

        return $state;
    }

    /**
     * Runs $fn on the state under an exclusive lock and writes the state it returns.
     *
     * @param callable(array): array{array, mixed} $fn the new state, and the result
     */
    private function change(callable $fn): mixed
    {
        return $this->locked(LOCK_EX, $fn);
    }

    /**
     * Reads the state under $lock (LOCK_SH or LOCK_EX) and runs $fn on it;
     * under LOCK_EX, writes the state $fn returns if it differs.
     *
     * @param callable(array): array{array, mixed} $fn
     */
    private function locked(int $lock, callable $fn): mixed
    {
        $handle = fopen($this->file, 'c+');
        if ($handle === false || !flock($handle, $lock)) {
            throw new RuntimeException("cannot open and lock {$this->file}");
        }
        try {
            $text = stream_get_contents($handle);
            $state = $text === '' || $text === false ? ['rooms' => [], 'events' => []] : json_decode($text, true, 512, JSON_THROW_ON_ERROR);
            foreach ($this->names as $name) {
                $state['rooms'][$name] ??= ['closed' => false, 'until' => null, 'token' => null];
            }
            [$new, $result] = $fn($state);
            if ($lock === LOCK_EX && $new !== $state) {
                ftruncate($handle, 0);
                rewind($handle);
                fwrite($handle, json_encode($new, JSON_PRETTY_PRINT | JSON_THROW_ON_ERROR));
                fflush($handle);
            }

            return $result;
        } finally {
            flock($handle, LOCK_UN);
            fclose($handle);
        }
    }
}
