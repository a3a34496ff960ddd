<?php

declare(strict_types=1);

namespace Defer;

use DateTimeImmutable;
use DateTimeZone;

/**
 * Typed reads of one decoded JSON object from the server.
 *
 * The server's answers are checked rather than trusted, so that an answer of
 * the wrong shape (a proxy's, or another program's on that port) becomes one
 * clear error instead of a TypeError deep inside the caller's code.
 *
 * @internal
 */
final class Fields
{
    /** RFC 3339, the only time format the server writes. */
    private const TIME = '/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/';

    /**
     * @param array<mixed> $data
     * @param string       $what the object's name, for error messages
     */
    public function __construct(private readonly array $data, private readonly string $what)
    {
    }

    public function int(string $name): int
    {
        return $this->optInt($name) ?? throw $this->missing($name);
    }

    public function optInt(string $name): ?int
    {
        $v = $this->data[$name] ?? null;
        if ($v !== null && !is_int($v)) {
            throw $this->wrong($name, 'an integer', $v);
        }

        return $v;
    }

    public function float(string $name): float
    {
        $v = $this->data[$name] ?? throw $this->missing($name);
        if (!is_int($v) && !is_float($v)) {
            throw $this->wrong($name, 'a number', $v);
        }

        return (float) $v;
    }

    public function string(string $name): string
    {
        return $this->optString($name) ?? throw $this->missing($name);
    }

    public function optString(string $name): ?string
    {
        $v = $this->data[$name] ?? null;
        if ($v !== null && !is_string($v)) {
            throw $this->wrong($name, 'a string', $v);
        }

        return $v;
    }

    public function bool(string $name): bool
    {
        return $this->optBool($name) ?? throw $this->missing($name);
    }

    public function optBool(string $name): ?bool
    {
        $v = $this->data[$name] ?? null;
        if ($v !== null && !is_bool($v)) {
            throw $this->wrong($name, 'true or false', $v);
        }

        return $v;
    }

    /** An RFC 3339 time, as a DateTimeImmutable in UTC. */
    public function optTime(string $name): ?DateTimeImmutable
    {
        $v = $this->optString($name);
        if ($v === null) {
            return null;
        }
        if (preg_match(self::TIME, $v) !== 1) {
            throw $this->wrong($name, 'an RFC 3339 time', $v);
        }
        try {
            // More than microseconds would not parse; the server writes milliseconds.
            $t = new DateTimeImmutable(preg_replace('/(\.\d{6})\d+/', '$1', $v) ?? $v);
        } catch (\Exception $e) {
            throw new \UnexpectedValueException(sprintf('%s.%s: %s', $this->what, $name, $e->getMessage()), 0, $e);
        }

        return $t->setTimezone(new DateTimeZone('UTC'));
    }

    private function missing(string $name): \UnexpectedValueException
    {
        return new \UnexpectedValueException(sprintf('%s.%s is missing', $this->what, $name));
    }

    private function wrong(string $name, string $expected, mixed $value): \UnexpectedValueException
    {
        return new \UnexpectedValueException(sprintf(
            '%s.%s should be %s, not %s',
            $this->what,
            $name,
            $expected,
            json_encode($value, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_PARTIAL_OUTPUT_ON_ERROR),
        ));
    }
}
