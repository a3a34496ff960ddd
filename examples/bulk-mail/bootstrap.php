<?php

/*
 * Shared by the page (public/, served by php -S) and the push script
 * (push/, run by php-fpm): the autoloader of the PHP client in clients/php,
 * and the settings run.sh passes in the environment. An application would
 * require composer's vendor/autoload.php instead of registering one here.
 */

declare(strict_types=1);

spl_autoload_register(static function (string $class): void {
    if (str_starts_with($class, 'Defer\\')) {
        require dirname(__DIR__, 2) . '/clients/php/src/' . str_replace('\\', '/', substr($class, 6)) . '.php';
    }
});

/** The deferd queue the mails go through; run.sh configures it as a push queue. */
const MAIL_QUEUE = 'mail';
/** Subscribers of the newsletter. */
const SUBSCRIBERS = 5000;
/** The address the "undeliverable mail" button sends to: .invalid never resolves. */
const UNDELIVERABLE = 'nobody@mail.example.invalid';

/** A setting from the environment, or an error that says how to get one. */
function setting(string $name): string
{
    $value = getenv($name);
    if ($value === false || $value === '') {
        throw new RuntimeException("$name is not set: start the example with examples/bulk-mail/run.sh");
    }

    return $value;
}
