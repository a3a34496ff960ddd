<?php

/*
 * Shared by the page (public/, served by php -S) and the restore script
 * (push/, run by php-fpm): the autoloader of the PHP client in clients/php,
 * the rooms, and the settings run.sh passes in the environment. An
 * application would require composer's vendor/autoload.php instead of
 * registering one here.
 */

declare(strict_types=1);

spl_autoload_register(static function (string $class): void {
    if (str_starts_with($class, 'Defer\\')) {
        require dirname(__DIR__, 2) . '/clients/php/src/' . str_replace('\\', '/', substr($class, 6)) . '.php';
    }
});

require __DIR__ . '/Rooms.php';

/** The deferd queue of the restore tasks; run.sh configures it as a push queue. */
const RESTORE_QUEUE = 'network';
/** The school's rooms. */
const ROOMS = ['101', '102', '201', '202'];

/** A setting from the environment, or an error that says how to get one. */
function setting(string $name): string
{
    $value = getenv($name);
    if ($value === false || $value === '') {
        throw new RuntimeException("$name is not set: start the example with examples/classroom-network/run.sh");
    }

    return $value;
}

/** The unique key of a room's restore task: there is never more than one per room. */
function restore_key(string $room): string
{
    return "room-$room";
}

/** Text for HTML. */
function h(string $text): string
{
    return htmlspecialchars($text, ENT_QUOTES);
}
